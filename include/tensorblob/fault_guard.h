// Surviving files that shrink under a mapping. Reading a mapped page past
// the end of a file that was truncated after it was mapped raises SIGBUS,
// which would kill the process. With the guard installed, the store's copies
// out of mappings catch that fault and throw Error(kIo) naming the file
// instead, so a daemon keeps serving everything else.
//
// Process-wide: install_fault_guard() replaces the SIGBUS handler (a program
// that has its own should not call it). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tensorblob {

// Installs the SIGBUS handler; idempotent.
void install_fault_guard();
// Whether it is installed.
bool fault_guard_installed();

// Runs fn(ctx). Returns false if it faulted with SIGBUS while the guard is
// installed (fn was cut short), true otherwise. Without the guard a fault
// kills the process as usual.
bool run_fault_guarded(void (*fn)(void*), void* ctx);

// memcpy that reports a SIGBUS in the source as false.
bool guarded_copy(void* dst, const void* src, size_t n);

// With the guard installed, whether file `name` (relative to dir_fd, or a
// path with AT_FDCWD) still reaches file offset `end`; true without it. A file
// cut inside a mapped page reads as zeros there instead of faulting, so a copy
// that did not fault proves nothing until this holds for its end.
bool mapped_file_reaches(int dir_fd, const char* name, uint64_t end);

// guarded_copy of n bytes out of a mapping of file `name` whose copied range
// ends at file offset `end`, then mapped_file_reaches(end). False if either fails.
bool copy_from_mapped_file(void* dst, const void* src, size_t n, int dir_fd, const char* name, uint64_t end);

}  // namespace tensorblob
