// How the daemon answers every signal whose default would end it, so that
// none leaves a stale mount behind:
//
//   SIGHUP SIGINT SIGTERM SIGQUIT SIGALRM SIGVTALRM SIGPROF SIGIO SIGPWR
//   SIGSTKFLT SIGXCPU and the real-time signals: end the session cleanly
//   (unmount, exit 0), even when inherited ignored (a shell's background
//   job ignores SIGINT and SIGQUIT), except SIGHUP under nohup.
//   SIGSEGV SIGBUS SIGILL SIGFPE SIGABRT SIGTRAP SIGSYS sent by another
//   process (kill): the same. Raised by a real fault here: the mount is
//   detached first (so no stale mount is left), then the process dies as it
//   would have, with a core dump where enabled.
//   SIGUSR1 SIGUSR2: ignored (reserved). SIGPIPE SIGXFSZ: ignored, so the
//   write that caused them fails with EPIPE or EFBIG instead.
//
// Process-wide; call install before tensorblob::install_fault_guard(), which
// hands the SIGBUS it does not handle itself to the handler installed here.
#pragma once

#include <string>

struct fuse_session;

namespace blobfs {

void install_signal_handlers(fuse_session* session, const std::string& mountpoint);
// Restores the default dispositions (after the session ended).
void remove_signal_handlers();
// The signal that ended the session, or 0.
int ending_signal();

}  // namespace blobfs
