#include "fuse_ops.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <new>
#include <vector>

#include "errors.h"
#include "filesystem.h"
#include "log.h"
#include "tensorblob/error.h"

namespace blobfs {

namespace {

constexpr size_t kNameMax = 255;

MountState& state_of(fuse_req_t req) { return *static_cast<MountState*>(fuse_req_userdata(req)); }
Filesystem& fs_of(fuse_req_t req) { return *state_of(req).fs; }

// The one place exceptions become errnos. A damaged backing file is EIO for
// the read that touched it, logged once per message (the message names the
// file); an error the operating system explains keeps its errno.
void reply_exception(fuse_req_t req) {
  try {
    throw;
  } catch (const tensorblob::Error& e) {
    if (e.sys_errno() == EMFILE || e.sys_errno() == ENFILE)
      log_once(LogLevel::kError, "descriptor limit",
               std::string("out of file descriptors (RLIMIT_NOFILE): ") + e.what() +
                   "; lower max_cached_blocks or raise the limit");
    else
      log_once(LogLevel::kError, e.what(), e.what());
    fuse_reply_err(req, errno_for(e));
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    log_once(LogLevel::kError, e.what(), std::string("internal error: ") + e.what());
    fuse_reply_err(req, EIO);
  }
}

fuse_entry_param entry_for(const Filesystem& fs, const View& v, uint64_t generation, const Node& node) {
  fuse_entry_param e{};
  e.ino = fs.ino_for_lookup(node, generation);
  e.attr = v.attributes(node, e.ino);
  e.attr_timeout = fs.options().attr_timeout;
  e.entry_timeout = fs.options().entry_timeout;
  return e;
}

// What this mount wants from the kernel, and why.
void op_init(void* userdata, fuse_conn_info* conn) {
  auto& state = *static_cast<MountState*>(userdata);
  // Readers may issue reads of one file in parallel (numpy, readahead).
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // Lookups in the one directory need not be serialised: they are pure arithmetic.
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Attributes come with listings when the lister also stats (ls -l).
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  // A new size or mtime in attributes must not drop a file's cached pages:
  // a frozen mount's data never changes, and a live mount drops exactly the
  // pages a commit changed itself (inval_inode from the refresher).
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (state.fs->options().live && (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA))
    conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
  // Zero-message opens: answering the first open (and opendir) with ENOSYS
  // makes the kernel open every later file without asking, keep its page
  // cache (FOPEN_KEEP_CACHE) and cache directory listings. Nothing is lost:
  // the mount is MS_RDONLY, so the VFS refuses write opens itself, and a
  // read-only file needs no per-open state. Only with keep_cache, since the
  // kernel then always keeps pages.
  if (state.fs->options().keep_cache) {
    state.no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
    state.no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
  }
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  try {
    Filesystem& fs = fs_of(req);
    uint64_t generation;
    auto v = fs.view(&generation);
    if (parent != FUSE_ROOT_ID) return void(fuse_reply_err(req, fs.node_of(*v, parent) ? ENOTDIR : ENOENT));
    std::string_view n(name);
    if (n.size() > kNameMax) return void(fuse_reply_err(req, ENAMETOOLONG));
    auto node = v->names().lookup(n);
    if (!node) {
      // A live mount's next commit may add this very name: no negative
      // entry (an ENOENT reply leaves none in the kernel).
      if (fs.options().live || fs.options().negative_timeout <= 0) return void(fuse_reply_err(req, ENOENT));
      fuse_entry_param e{};  // ino 0: a negative entry the kernel may cache
      e.entry_timeout = fs.options().negative_timeout;
      return void(fuse_reply_entry(req, &e));
    }
    fuse_entry_param e = entry_for(fs, *v, generation, *node);
    if (fuse_reply_entry(req, &e) != 0) fs.nodes().forget(e.ino, 1);  // the kernel never got it
  } catch (...) {
    reply_exception(req);
  }
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fs_of(req).nodes().forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t k = 0; k < count; ++k) fs_of(req).nodes().forget(forgets[k].ino, forgets[k].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  try {
    Filesystem& fs = fs_of(req);
    auto v = fs.view();
    auto node = fs.node_of(*v, ino);
    if (!node) return void(fuse_reply_err(req, ENOENT));
    struct stat st = v->attributes(*node, ino);
    fuse_reply_attr(req, &st, fs.options().attr_timeout);
  } catch (...) {
    reply_exception(req);
  }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (state_of(req).no_open && (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC))
    return void(fuse_reply_err(req, ENOSYS));
  Filesystem& fs = fs_of(req);
  auto v = fs.view();
  auto node = fs.node_of(*v, ino);
  if (!node) return void(fuse_reply_err(req, ENOENT));
  if (node->kind == NodeKind::kRoot) return void(fuse_reply_err(req, EISDIR));
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return void(fuse_reply_err(req, EROFS));
  // Never direct_io: it would break mmap, and np.load(mmap_mode='r') with it.
  fi->keep_cache = fs.options().keep_cache;
  fi->noflush = 1;  // nothing to flush on close of a read-only file
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  try {
    Filesystem& fs = fs_of(req);
    thread_local std::vector<char> buf;
    if (buf.size() < size) buf.resize(size);
    for (int attempt = 0;; ++attempt) {
      auto v = fs.view();
      auto node = fs.node_of(*v, ino);
      if (!node) return void(fuse_reply_err(req, ENOENT));
      try {
        size_t n = off < 0 ? 0 : v->read(*node, static_cast<uint64_t>(off), size, buf.data());
        return void(fuse_reply_buf(req, buf.data(), n));
      } catch (const tensorblob::Error& e) {
        // A live mount whose view lost a block to a commit it has not seen
        // yet: follow that commit (the refresher tells the kernel) and
        // answer from it. The reply still comes from one snapshot.
        if (!fs.options().live || e.code() != tensorblob::Errc::kNotFound || attempt > 0 || !fs.refresh_and_queue())
          throw;
      }
    }
  } catch (...) {
    reply_exception(req);
  }
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (state_of(req).no_opendir && ino == FUSE_ROOT_ID && (fi->flags & O_ACCMODE) == O_RDONLY)
    return void(fuse_reply_err(req, ENOSYS));
  if (ino != FUSE_ROOT_ID) {
    Filesystem& fs = fs_of(req);
    return void(fuse_reply_err(req, fs.node_of(*fs.view(), ino) ? ENOTDIR : ENOENT));
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return void(fuse_reply_err(req, EROFS));
  fi->cache_readdir = 1;  // a live mount drops it (inval_inode of the root) when a commit changes the count
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// Streams entries by offset: entry k is ".", "..", then Namespace::listed(k-2).
// Nothing is stored between calls, whatever the tensor count. With `plus`
// each entry carries its attributes (READDIRPLUS), so `ls -l`, `stat` and
// opens after a listing need no LOOKUP per file; the kernel asks for that
// only while the lister also stats (FUSE_CAP_READDIRPLUS_AUTO), so `ls -f`
// of millions of names does not make it build millions of inodes.
void list_entries(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  try {
    Filesystem& fs = fs_of(req);
    if (ino != FUSE_ROOT_ID) return void(fuse_reply_err(req, ENOTDIR));
    uint64_t generation;
    auto v = fs.view(&generation);
    std::vector<char> buf(size);
    size_t used = 0;
    const uint64_t total = 2 + v->names().listed_count();
    for (uint64_t k = off < 0 ? 0 : static_cast<uint64_t>(off); k < total; ++k) {
      fuse_entry_param e{};  // ino 0 for the dot entries: no lookup is counted for them
      std::string name;
      if (k < 2) {
        name = k == 0 ? "." : "..";
        e.attr.st_ino = FUSE_ROOT_ID;
        e.attr.st_mode = S_IFDIR;
      } else {
        Node node = v->names().listed(k - 2);
        name = v->names().name(node);
        if (plus) {
          e = entry_for(fs, *v, generation, node);
        } else {
          e.attr.st_ino = *Namespace::fixed_ino(node);  // listed files are never ranges
          e.attr.st_mode = S_IFREG;
        }
      }
      const off_t next = static_cast<off_t>(k + 1);
      char* at = buf.data() + used;
      size_t need = plus ? fuse_add_direntry_plus(req, at, size - used, name.c_str(), &e, next)
                         : fuse_add_direntry(req, at, size - used, name.c_str(), &e.attr, next);
      if (need > size - used) {
        if (plus && k >= 2) fs.nodes().forget(e.ino, 1);  // counted, but it did not fit: the kernel never saw it
        break;
      }
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  } catch (...) {
    reply_exception(req);
  }
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list_entries(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list_entries(req, ino, size, off, true);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto v = fs_of(req).view();
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = (v->size(Node{NodeKind::kAllBin, 0, v->names().count()}) + 4095) / 4096;
  sv.f_files = v->names().listed_count() + 1;
  sv.f_namemax = kNameMax;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

// Python's open() asks isatty() (TCGETS) on every file, and the kernel sends
// each ioctl here; a regular file is never a terminal.
void op_ioctl(fuse_req_t req, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned, const void*, size_t, size_t) {
  fuse_reply_err(req, ENOTTY);
}

// Every change is refused: the mount is read-only (the kernel usually says so
// before asking, since the mount carries MS_RDONLY).
void erofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
void op_setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { erofs(req); }
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { erofs(req); }
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { erofs(req); }
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) { erofs(req); }
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { erofs(req); }
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) { erofs(req); }
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { erofs(req); }
void op_write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) { erofs(req); }
void op_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { erofs(req); }
void op_removexattr(fuse_req_t req, fuse_ino_t, const char*) { erofs(req); }
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { erofs(req); }
void op_fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) { erofs(req); }

}  // namespace

const fuse_lowlevel_ops& fuse_operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = op_lookup;
    o.forget = op_forget;
    o.forget_multi = op_forget_multi;
    o.getattr = op_getattr;
    o.open = op_open;
    o.read = op_read;
    o.opendir = op_opendir;
    o.readdir = op_readdir;
    o.readdirplus = op_readdirplus;
    o.statfs = op_statfs;
    o.setattr = op_setattr;
    o.mknod = op_mknod;
    o.mkdir = op_mkdir;
    o.unlink = op_unlink;
    o.rmdir = op_unlink;
    o.symlink = op_symlink;
    o.rename = op_rename;
    o.link = op_link;
    o.write = op_write;
    o.setxattr = op_setxattr;
    o.removexattr = op_removexattr;
    o.create = op_create;
    o.fallocate = op_fallocate;
    o.ioctl = op_ioctl;
    return o;
  }();
  return ops;
}

}  // namespace blobfs
