// The one seam between a store and the operating system. Every file a blob
// or ragged dataset reads or writes (block files, .conf, .stat, sidecars,
// the picomap trio) goes through a Storage: one directory of named files.
// POSIX is one implementation (open_posix_storage); object storage is
// another, so nothing above this header knows which one it talks to. The
// model is leveldb's Env, narrowed to what a store needs.
//
// Ownership: a Storage owns its directory handle; the files it opens own
// their descriptors and mappings and outlive nothing they need (each holds
// what it uses). Errors are tensorblob::Error naming the file, with the errno
// that caused them (error.h).
//
// Thread safety: Storage and ReadableFile are safe for concurrent use by
// multiple threads. A WritableFile is used by one writer at a time, but
// writes to different offsets of one file may run on two threads at once.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tensorblob {

// Bytes held in place where they are stored (a file mapping) or in a copy;
// `keep_alive` keeps whatever backs `data` valid while it is held.
struct ByteView {
  std::shared_ptr<const void> keep_alive;
  const std::byte* data = nullptr;
  size_t size = 0;
};

enum class FileKind { kRegular, kDirectory, kSymlink, kFifo, kCharDevice, kBlockDevice, kSocket, kOther };
// "a directory", "a FIFO", ...: for messages.
const char* describe(FileKind kind);

// What a file is, for telling whether it changed: a file rewritten in place
// changes its mtime or size, a file replaced by rename its inode (POSIX) or
// its etag (object storage).
struct FileInfo {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;  // 0 where the backend has none
  std::string etag;    // empty where the backend has none
  FileKind kind = FileKind::kRegular;
  bool regular() const { return kind == FileKind::kRegular; }
  bool operator==(const FileInfo&) const = default;
};

// How a file is read. kMapped maps it, so views are zero-copy and warm reads
// are a memcpy; kPread copies with pread, so nothing is mapped (a daemon's
// resident memory then stays small however much it serves).
enum class Access { kMapped, kPread };

// An open file to read: the file as it was when opened, even if its name is
// later given to another file.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual const std::string& path() const = 0;  // for messages
  virtual uint64_t size() const = 0;            // when it was opened
  // Copies [offset, offset + n) into dst. Throws Error naming the file if the
  // file no longer holds those bytes (another process cut it) or I/O fails;
  // never returns zeros for bytes the file lost.
  virtual void read(uint64_t offset, size_t n, void* dst) const = 0;
  // The same bytes without a copy where the file is mapped, else a copy. A
  // view into a mapping can fault if the file shrinks later: touch it only
  // under run_fault_guarded (fault_guard.h) or use read().
  virtual ByteView view(uint64_t offset, size_t n) const = 0;
  // The mapping's first byte, or nullptr when the file is not mapped; for
  // callers that copy many pieces themselves (gathers with prefetch). The
  // same caveat as view(); check reaches() after copying.
  virtual const std::byte* mapped() const = 0;
  // Whether the open file still holds `end` bytes (true where it cannot shrink).
  virtual bool reaches(uint64_t end) const = 0;
  // What the open file is now.
  virtual FileInfo info() const = 0;

  // Read-ahead across files (a store's blocks, read in order as one stream),
  // for storage that fetches ahead (object storage); where reads are local
  // both do nothing. read_ahead(): how far past `end` this file is fetching
  // for a reader whose last read ended there (0: no such reader).
  // continue_read_ahead(): such a reader goes on at this file's start:
  // fetch its first `n` bytes and keep the reader's window.
  virtual uint64_t read_ahead(uint64_t end) const {
    (void)end;
    return 0;
  }
  virtual void continue_read_ahead(uint64_t n) const { (void)n; }
};

// A file being written by the store's one writer.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual const std::string& path() const = 0;
  virtual void write(uint64_t offset, const void* data, size_t n) = 0;
  // Reserves disk space for [offset, offset + n) within the file's size, so a
  // full disk is an error now rather than at writeback. A no-op where the
  // backend cannot.
  virtual void reserve(uint64_t offset, uint64_t n) = 0;
  virtual void resize(uint64_t size) = 0;
  // Copies the first n bytes of `src` to offset 0 (in the kernel where it can).
  virtual void copy_from(const ReadableFile& src, uint64_t n) = 0;
  // Returns once the data written is durable.
  virtual void sync() = 0;
};

// Held while this process is the store's one writer.
class StorageLock {
 public:
  virtual ~StorageLock() = default;
};

// Tells that files of a directory may have changed. fd() becomes readable
// on a change (poll it); drain() consumes what is pending and returns the
// names reported (empty: nothing of interest).
class ChangeWatch {
 public:
  virtual ~ChangeWatch() = default;
  virtual int fd() const = 0;
  virtual std::vector<std::string> drain() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // "/data/emb" or "s3://bucket/prefix": where the files are, for messages.
  virtual const std::string& location() const = 0;
  std::string path_of(std::string_view name) const;
  // Identifies the directory itself: two Storage objects with the same key
  // are the same directory, however it was spelled.
  virtual std::string identity() const = 0;

  // nullopt when no file has that name. Symbolic links are not followed.
  virtual std::optional<FileInfo> stat(const std::string& name) const = 0;
  // Whether `name` exists and is a regular file.
  bool is_file(const std::string& name) const;
  // Opens a regular file. Never blocks (a FIFO is refused, not waited on)
  // and never follows a symbolic link. Throws Error: kNotFound when missing,
  // kFormat when `name` is not a regular file.
  virtual std::unique_ptr<ReadableFile> open(const std::string& name, Access access = Access::kMapped) const = 0;
  // All of a small regular file; kFormat if it is larger than `limit`.
  virtual std::string read_small(const std::string& name, size_t limit = size_t{1} << 30) const = 0;
  // Every name in the directory (any kind of file), unordered.
  virtual std::vector<std::string> list() const = 0;

  // A new file (fails if the name exists), empty, with permission bits
  // `mode` (less the umask where the backend has one).
  virtual std::unique_ptr<WritableFile> create(const std::string& name, mode_t mode = 0644) = 0;
  // An existing regular file, to overwrite bytes in place.
  virtual std::unique_ptr<WritableFile> open_writable(const std::string& name) = 0;
  // Replaces `name` by `content` so that a crash leaves the old bytes or the
  // new ones: a temporary (temp_name), synced, renamed over, the directory
  // synced. Every single-file publish of the store goes through here.
  virtual void publish(const std::string& name, std::string_view content, mode_t mode = 0666);
  // Atomically renames `from` to `to`, replacing `to`.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Removes a file; a missing one is not an error.
  virtual void remove(const std::string& name) = 0;
  // Makes creates, renames and removes so far durable.
  virtual void sync() = 0;
  // The exclusive writer lock; Error(kBusy) when another writer holds it.
  virtual std::unique_ptr<StorageLock> lock() = 0;
  // Change notification for this directory, or nullptr where the backend has
  // none (callers then poll stat()).
  virtual std::unique_ptr<ChangeWatch> watch() const = 0;
  // Whether files are objects, stored whole and with no holes (object
  // storage): a blob's last block is then kept only as long as its
  // committed rows, where a local block file is always block-sized (sparse).
  virtual bool holds_objects() const { return false; }
};

// The directory `dir` (which must exist) on the local filesystem. Throws
// Error: kNotFound if it does not exist, kFormat if it is not a directory.
std::shared_ptr<Storage> open_posix_storage(const std::string& dir);

// The temporary a file `name` of a store is written under before it is
// renamed into place, "<name>.tmp.<pid>": two processes never share one, and
// a writer that finds one whose process is gone removes it.
std::string temp_name(std::string_view name);

// `path` made absolute against the current directory, with no "." or ".."
// parts and no trailing '/' (symbolic links are not resolved). Relative
// paths stop meaning the same thing once a daemon changes directory.
std::string absolute_path(const std::string& path);
// The directory part and the last part of a path: ("a/b", "c") for "a/b/c",
// (".", "c") for "c", ("/", "c") for "/c".
std::pair<std::string, std::string> split_path(const std::string& path);

// The whole of the regular file at `path` (a config file), at most `limit`
// bytes. Follows symbolic links (a path a user names); never blocks on a FIFO. Throws Error naming the file: kNotFound,
// kFormat ("not a regular file", "larger than ..."), kIo.
std::string read_regular_file(const std::string& path, size_t limit);

// A regular file opened for reading by path (an input of tblob import), with
// the same refusals as read_regular_file.
std::unique_ptr<ReadableFile> open_regular_file(const std::string& path, Access access = Access::kPread);

// Where a command writes its output (tblob export OUT). A path naming a
// regular file, or nothing yet, is replaced atomically when commit() is
// called: the output appears whole or not at all. A path naming a device, a
// FIFO or a terminal, or one of /dev/stdout and /dev/fd/N, is written
// through as a stream, as cp and numpy.save do. Symbolic links are followed,
// so the file they point to is the one replaced.
class OutputFile {
 public:
  virtual ~OutputFile() = default;  // without commit(): a temporary is removed
  virtual void write(const void* data, size_t n) = 0;
  virtual void commit() = 0;
  // Whether the output is a stream (not replaced atomically).
  virtual bool streaming() const = 0;
};
std::unique_ptr<OutputFile> open_output_file(const std::string& path);

}  // namespace tensorblob
