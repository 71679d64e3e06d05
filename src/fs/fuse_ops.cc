#include "fuse_ops.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <new>
#include <vector>

#include "errors.h"
#include "catalog_fs.h"
#include "filesystem.h"
#include "log.h"
#include "metrics.h"
#include "ring_transport.h"
#include "tensorblob/error.h"

namespace blobfs {

namespace {

constexpr size_t kNameMax = 255;

MountState& state_of(fuse_req_t req) { return *static_cast<MountState*>(fuse_req_userdata(req)); }

// Where a request lands in one store: its Filesystem, the store's own
// number for the inode, and how numbers cross to the kernel.
struct Target {
  Filesystem& fs;
  uint64_t ino;
  StoreInodes& inodes;
};

// The store a writable mount writes; null on a read-only mount and in a
// catalog (which never is writable).
Filesystem* written(fuse_req_t req) {
  Filesystem* fs = state_of(req).fs;
  return fs && fs->writes() ? fs : nullptr;
}

// Every error reply goes through here, so the metrics count it.
int reply_err(fuse_req_t req, int err) {
  Metrics::global().error(err);
  return fuse_reply_err(req, err);
}

// File data for a read, counted.
void reply_data(fuse_req_t req, const char* data, size_t n) {
  if (fuse_reply_buf(req, data, n) == 0) Metrics::global().bytes_read(n);
}

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
    reply_err(req, errno_for(e));
  } catch (const std::bad_alloc&) {
    reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    log_once(LogLevel::kError, e.what(), std::string("internal error: ") + e.what());
    reply_err(req, EIO);
  }
}

// A file handed to the kernel: counted in the store, then numbered for the kernel.
fuse_entry_param entry_for(const Target& t, const View& v, uint64_t generation, const Node& node) {
  fuse_entry_param e{};
  const uint64_t local = t.fs.ino_for_lookup(node, generation);
  try {
    e.ino = t.inodes.hand_out(local);
  } catch (...) {
    t.fs.nodes().forget(local, 1);
    throw;
  }
  e.attr = v.attributes(node, e.ino);
  e.attr_timeout = t.fs.options().attr_timeout;
  e.entry_timeout = t.fs.options().entry_timeout;
  return e;
}

// What this mount wants from the kernel, and why.
void op_init(void* userdata, fuse_conn_info* conn) {
  auto& state = *static_cast<MountState*>(userdata);
  const Options& options = *state.options;
  const bool writes = state.fs && state.fs->writes();
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
  if (options.live && (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA))
    conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
  // Zero-message opens: answering the first open (and opendir) with ENOSYS
  // makes the kernel open every later file without asking, keep its page
  // cache (FOPEN_KEEP_CACHE) and cache directory listings. Nothing is lost:
  // the mount is MS_RDONLY, so the VFS refuses write opens itself, and a
  // read-only file needs no per-open state. Only with keep_cache, since the
  // kernel then always keeps pages.
  // A writable mount needs its opens (a write handle each) and the flush of
  // every close (the commit, whose error close() returns): no zero-message
  // opens there; read-only opens still skip their flush (noflush).
  // A catalog's own text files never change (new text is a new inode), so
  // they need no open either.
  if (options.keep_cache && !writes) {
    state.no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
    state.no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
  }
  // cp opens with O_TRUNC: the truncation must arrive with the open (a
  // tensor's new bytes replace it at close), not as a separate setattr.
  if (writes && (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

void store_lookup(fuse_req_t req, const Target& t, const char* name) {
  try {
    Filesystem& fs = t.fs;
    uint64_t generation;
    auto v = fs.view(&generation);
    if (t.ino != FUSE_ROOT_ID) return void(reply_err(req, fs.node_of(*v, t.ino) ? ENOTDIR : ENOENT));
    std::string_view n(name);
    if (n.size() > kNameMax) return void(reply_err(req, ENAMETOOLONG));
    auto node = v->names().lookup(n);
    if (!node) {
      // A live mount's next commit may add this very name: no negative
      // entry (an ENOENT reply leaves none in the kernel).
      if (fs.options().live || fs.options().negative_timeout <= 0) return void(reply_err(req, ENOENT));
      fuse_entry_param e{};  // ino 0: a negative entry the kernel may cache
      e.entry_timeout = fs.options().negative_timeout;
      return void(fuse_reply_entry(req, &e));
    }
    fuse_entry_param e = entry_for(t, *v, generation, *node);
    if (fuse_reply_entry(req, &e) != 0) t.inodes.take_back(e.ino);  // the kernel never got it
  } catch (...) {
    reply_exception(req);
  }
}

void store_getattr(fuse_req_t req, const Target& t, fuse_file_info* fi) {
  const uint64_t ino = t.ino;
  try {
    Filesystem& fs = t.fs;
    auto v = fs.view();
    // A file open for writing has the size its writes gave it (a new tensor
    // file exists only through its handle until it is committed).
    if (fi && fi->fh && fs.writes()) {
      if (auto node = fs.writes()->node(fi->fh)) {
        struct stat st = v->attributes(Node{NodeKind::kItemBin, 0, 0}, t.inodes.shown(ino));
        st.st_size = static_cast<off_t>(*fs.writes()->size(fi->fh));
        st.st_blocks = (st.st_size + 511) / 512;
        return void(fuse_reply_attr(req, &st, 0));
      }
    }
    auto node = fs.node_of(*v, ino);
    if (!node && fs.writes() && !Namespace::is_dynamic_ino(ino)) {
      // A file created at the next index exists through its handle until
      // it is committed.
      const Namespace any(tensorblob::kMaxMountedCount, fs.options().naming_width, true, true);
      if (auto maybe = any.from_ino(ino))
        if (auto size = fs.writes()->created_size(*maybe)) {
          struct stat st = v->attributes(Node{NodeKind::kItemBin, 0, 0}, t.inodes.shown(ino));
          st.st_size = static_cast<off_t>(*size);
          st.st_blocks = (st.st_size + 511) / 512;
          return void(fuse_reply_attr(req, &st, 0));
        }
    }
    if (!node) return void(reply_err(req, ENOENT));
    struct stat st = v->attributes(*node, t.inodes.shown(ino));
    fuse_reply_attr(req, &st, fs.options().attr_timeout);
  } catch (...) {
    reply_exception(req);
  }
}

void store_open(fuse_req_t req, const Target& t, fuse_file_info* fi) {
  Filesystem& fs = t.fs;
  auto v = fs.view();
  auto node = fs.node_of(*v, t.ino);
  if (!node) return void(reply_err(req, ENOENT));
  if (node->kind == NodeKind::kRoot) return void(reply_err(req, EISDIR));
  const bool write = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (write) {
    if (!fs.writes()) return void(reply_err(req, EROFS));
    // meta.yaml describes the blob; all.npy's header is the blob's shape.
    if (node->kind == NodeKind::kMeta || node->kind == NodeKind::kAllNpy) return void(reply_err(req, EPERM));
    try {
      fi->fh = fs.writes()->open(*node, fi->flags & O_TRUNC, false, fi->flags & O_APPEND);
    } catch (...) {
      return reply_exception(req);
    }
    // Written bytes never enter the page cache: until the commit they are
    // no file's bytes, and a commit that fails must leave nothing behind.
    fi->direct_io = 1;
    fi->keep_cache = 0;
    return void(fuse_reply_open(req, fi));
  }
  fi->fh = 0;
  // Never direct_io: it would break mmap, and np.load(mmap_mode='r') with it.
  fi->keep_cache = fs.options().keep_cache;
  fi->noflush = 1;  // nothing to flush on close of a read-only file
  fuse_reply_open(req, fi);
}

void store_read(fuse_req_t req, const Target& t, size_t size, off_t off, fuse_file_info* fi) {
  try {
    Filesystem& fs = t.fs;
    // On a ring thread the bytes go straight into the ring entry's reply
    // buffer (no copy on the way out); elsewhere into this thread's buffer.
    thread_local std::vector<char> own;
    char* data = ring_reply_buffer(size);
    if (!data) {
      if (own.size() < size) own.resize(size);
      data = own.data();
    }
    if (fi && fi->fh && fs.writes()) {  // O_RDWR: a handle reads its own writes
      size_t n = off < 0 ? 0 : fs.writes()->read(fi->fh, static_cast<uint64_t>(off), size, data);
      return reply_data(req, data, n);
    }
    for (int attempt = 0;; ++attempt) {
      auto v = fs.view();
      auto node = fs.node_of(*v, t.ino);
      if (!node) return void(reply_err(req, ENOENT));
      try {
        // Bytes already in memory (object storage) are answered from there.
        if (off >= 0)
          if (auto view = v->view(*node, static_cast<uint64_t>(off), size))
            return reply_data(req, reinterpret_cast<const char*>(view->data), view->size);
        size_t n = off < 0 ? 0 : v->read(*node, static_cast<uint64_t>(off), size, data);
        return reply_data(req, data, n);
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

void store_opendir(fuse_req_t req, const Target& t, fuse_file_info* fi) {
  if (t.ino != FUSE_ROOT_ID) return void(reply_err(req, t.fs.node_of(*t.fs.view(), t.ino) ? ENOTDIR : ENOENT));
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return void(reply_err(req, EROFS));
  fi->cache_readdir = 1;  // a live mount drops it (inval_inode of the root) when a commit changes the count
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// One READDIR(PLUS) reply: entries k = off, off+1, ... of `total`, each
// made by fill(k, e) (its name; nullptr: skip it) until the buffer is full.
// An entry that no longer fits was counted for READDIRPLUS but never seen
// by the kernel: undo(e.ino) takes it back (not for the dot entries).
template <typename Fill, typename Undo>
void reply_listing(fuse_req_t req, size_t size, off_t off, uint64_t total, bool plus, Fill&& fill, Undo&& undo) {
  std::vector<char> buf(size);
  size_t used = 0;
  for (uint64_t k = off < 0 ? 0 : static_cast<uint64_t>(off); k < total; ++k) {
    fuse_entry_param e{};  // ino 0 for the dot entries: no lookup is counted for them
    const char* name = fill(k, e);
    if (!name) continue;
    const off_t next = static_cast<off_t>(k + 1);
    char* at = buf.data() + used;
    size_t need = plus ? fuse_add_direntry_plus(req, at, size - used, name, &e, next)
                       : fuse_add_direntry(req, at, size - used, name, &e.attr, next);
    if (need > size - used) {
      if (plus && k >= 2) undo(e.ino);
      break;
    }
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

// Streams entries by offset: entry k is ".", "..", then Namespace::listed(k-2).
// Nothing is stored between calls, whatever the tensor count. With `plus`
// each entry carries its attributes (READDIRPLUS), so `ls -l`, `stat` and
// opens after a listing need no LOOKUP per file; the kernel asks for that
// only while the lister also stats (FUSE_CAP_READDIRPLUS_AUTO), so `ls -f`
// of millions of names does not make it build millions of inodes.
void list_entries(fuse_req_t req, const Target& t, size_t size, off_t off, bool plus) {
  try {
    Filesystem& fs = t.fs;
    if (t.ino != FUSE_ROOT_ID) return void(reply_err(req, ENOTDIR));
    uint64_t generation;
    auto v = fs.view(&generation);
    std::string name;
    reply_listing(
        req, size, off, 2 + v->names().listed_count(), plus,
        [&](uint64_t k, fuse_entry_param& e) {
          if (k < 2) {
            e.attr.st_ino = t.inodes.shown(FUSE_ROOT_ID);
            e.attr.st_mode = S_IFDIR;
            return k == 0 ? "." : "..";
          }
          Node node = v->names().listed(k - 2);
          name = v->names().name(node);
          if (plus) {
            e = entry_for(t, *v, generation, node);
          } else {
            e.attr.st_ino = t.inodes.shown(*Namespace::fixed_ino(node));  // listed files are never ranges
            e.attr.st_mode = S_IFREG;
          }
          return name.c_str();
        },
        [&](uint64_t ino) { t.inodes.take_back(ino); });
  } catch (...) {
    reply_exception(req);
  }
}

void store_statfs(fuse_req_t req, Filesystem& fs) {
  auto v = fs.view();
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = (v->size(Node{NodeKind::kAllBin, 0, v->names().count()}) + 4095) / 4096;
  sv.f_files = v->names().listed_count() + 1;
  sv.f_namemax = kNameMax;
  sv.f_flag = ST_RDONLY;
  if (fs.writes()) {
    // Free space is the source filesystem's: df and copy tools check it.
    struct statvfs src {};
    if (::statvfs(v->dataset().source().c_str(), &src) == 0) {
      sv.f_bfree = src.f_bfree * src.f_frsize / 4096;
      sv.f_bavail = src.f_bavail * src.f_frsize / 4096;
      sv.f_blocks += sv.f_bfree;
    }
    sv.f_flag = 0;
  }
  fuse_reply_statfs(req, &sv);
}

// Python's open() asks isatty() (TCGETS) on every file, and the kernel sends
// each ioctl here; a regular file is never a terminal.
void op_ioctl(fuse_req_t req, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned, const void*, size_t, size_t) {
  reply_err(req, ENOTTY);
}

// What has no meaning for a blob: EROFS on a read-only mount (the kernel
// usually says so before asking, since it carries MS_RDONLY), EPERM on a
// writable one.
void refuse(fuse_req_t req) { reply_err(req, written(req) ? EPERM : EROFS); }
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { refuse(req); }
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { refuse(req); }
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) { refuse(req); }
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { refuse(req); }
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) { refuse(req); }
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { refuse(req); }
void op_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { refuse(req); }
void op_removexattr(fuse_req_t req, fuse_ino_t, const char*) { refuse(req); }
// Space is the blob's business; copy tools fall back to writing.
void op_fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  reply_err(req, written(req) ? EOPNOTSUPP : EROFS);
}

// A new file at the next index: one tensor appended when it is closed.
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
  try {
    if (!written(req)) return void(reply_err(req, EROFS));
    Filesystem& fs = *written(req);
    if (parent != FUSE_ROOT_ID) return void(reply_err(req, ENOTDIR));
    uint64_t generation;
    auto v = fs.view(&generation);
    const int64_t count = v->dataset().count();
    // The names the next commit could add: NNNNNN.bin and .npy at index count.
    const Options& o = fs.options();
    const Namespace next(count + 1, o.naming_width, o.npy_views && !v->dataset().npy_descr().empty(), false);
    auto node = next.lookup(name);
    if (node && node->first < count) return void(reply_err(req, EEXIST));  // looked up as missing a moment ago
    if (!node || (node->kind != NodeKind::kItemBin && node->kind != NodeKind::kItemNpy))
      return void(reply_err(req, EPERM));  // only the next index can be created
    fi->fh = fs.writes()->open(*node, true, true);
    fi->direct_io = 1;
    fuse_entry_param e{};
    try {
      e.ino = fs.ino_for_lookup(*node, generation);
      e.attr = v->attributes(Node{NodeKind::kItemBin, 0, 0}, e.ino);
    } catch (...) {
      if (e.ino) fs.nodes().forget(e.ino, 1);
      fs.writes()->release(fi->fh);  // no reply names the handle: nothing else would drop it
      throw;
    }
    e.attr.st_size = 0;
    e.attr.st_blocks = 0;
    e.attr_timeout = 0;
    e.entry_timeout = fs.options().entry_timeout;
    if (fuse_reply_create(req, &e, fi) != 0) {
      fs.nodes().forget(e.ino, 1);
      fs.writes()->release(fi->fh);
    }
  } catch (...) {
    reply_exception(req);
  }
}

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info* fi) {
  try {
    Filesystem* fs = written(req);
    if (!fs || !fi->fh) return void(reply_err(req, fs ? EBADF : EROFS));
    if (off < 0) return void(reply_err(req, EINVAL));
    const int err = fs->writes()->write(fi->fh, static_cast<uint64_t>(off), data, size);
    if (err) return void(reply_err(req, err));
    fuse_reply_write(req, size);
  } catch (...) {
    reply_exception(req);
  }
}

// Commits the handle's writes; the mount then answers from the new commit
// (the refresher tells the kernel what changed).
int commit(Filesystem* written, fuse_file_info* fi) {
  if (!written || !fi->fh) return 0;
  Filesystem& fs = *written;
  bool changed = false;
  const int err = fs.writes()->commit(fi->fh, &changed);
  if (changed) {
    try {
      fs.refresh_and_queue();
    } catch (const std::exception& e) {
      // Committed all the same: the refresher picks the commit up later.
      log_once(LogLevel::kError, e.what(), std::string("after a commit: ") + e.what());
    }
  }
  return err;
}

// close(): its result is this reply's.
void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  // A read-only mount has nothing to flush, and files opened without an
  // open (zero-message opens) carry no noflush flag: ENOSYS once makes the
  // kernel stop sending FLUSH on every close. Not an error: not counted.
  if (!written(req)) return void(fuse_reply_err(req, ENOSYS));
  try {
    reply_err(req, commit(written(req), fi));
  } catch (...) {
    reply_exception(req);
  }
}

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  try {
    reply_err(req, commit(written(req), fi));
  } catch (...) {
    reply_exception(req);
  }
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Filesystem* fs = written(req);
  if (fs && fi->fh) {
    try {
      if (auto node = fs->writes()->node(fi->fh)) fs->forget_uncommitted(*node, ino);
    } catch (const std::exception& e) {
      log_once(LogLevel::kError, e.what(), std::string("closing a written file: ") + e.what());
    }
    fs->writes()->release(fi->fh);  // whatever happened: the handle goes
  }
  reply_err(req, 0);
}

// truncate -s on all.bin cuts the blob; a file keeps its size; nothing else changes.
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  try {
    if (!written(req)) return void(reply_err(req, EROFS));
    Filesystem& fs = *written(req);
    if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME)) return void(reply_err(req, EPERM));
    auto v = fs.view();
    auto node = fs.node_of(*v, ino);
    if (!node) return void(reply_err(req, ENOENT));
    if (to_set & FUSE_SET_ATTR_SIZE) {
      const uint64_t size = static_cast<uint64_t>(attr->st_size);
      if (node->kind == NodeKind::kAllBin) {
        bool changed = false;
        if (int err = fs.writes()->truncate(size, &changed)) return void(reply_err(req, err));
        if (changed) fs.refresh_and_queue();
        v = fs.view();
        node = Node{NodeKind::kAllBin, 0, v->dataset().count()};
      } else if (size != v->size(*node)) {
        return void(reply_err(req, node->kind == NodeKind::kMeta || node->kind == NodeKind::kAllNpy ? EPERM : EINVAL));
      }
    }
    struct stat st = v->attributes(*node, ino);
    fuse_reply_attr(req, &st, fs.options().attr_timeout);
  } catch (...) {
    reply_exception(req);
  }
}

// ---- Routing: every callback below finds where its inode lives. In a
// single-store mount that is the store; in a catalog it is a file of an
// open store, a store's directory (entered: the store's own root), or a
// directory or text file of the catalog itself.

Target single(fuse_req_t req, uint64_t ino) {
  MountState& s = state_of(req);
  return Target{*s.fs, ino, *s.same};
}

template <typename StoreOp, typename CatalogOp>
void route(fuse_req_t req, uint64_t ino, bool enter, StoreOp&& store_op, CatalogOp&& catalog_op) {
  CatalogFs* cat = state_of(req).catalog;
  if (!cat) return store_op(single(req, ino));
  std::optional<CatalogFs::Target> t;
  std::shared_ptr<OpenStore> store;  // held until the reply is sent
  try {
    t = cat->resolve(ino);
    if (!t) return void(reply_err(req, ENOENT));
    if (t->store) return store_op(Target{t->store->fs(), t->local, *t->store});
    // A damaged store stays the catalog's: a directory with its meta.yaml.
    if (enter && t->node->kind == CatalogFs::Kind::kStoreDir) store = cat->open(*t->node);
  } catch (...) {
    return reply_exception(req);
  }
  if (store) return store_op(Target{store->fs(), FUSE_ROOT_ID, *store});
  catalog_op(*cat, *t->node);
}

using CNode = CatalogFs::Node;
using CKind = CatalogFs::Kind;

fuse_entry_param catalog_entry(const CatalogFs::Entry& c) {
  fuse_entry_param e{};
  e.ino = c.ino;
  e.attr = c.attr;
  e.attr_timeout = e.entry_timeout = c.timeout;
  return e;
}

void catalog_lookup(fuse_req_t req, CatalogFs& cat, CNode& dir, const char* name) {
  try {
    if (dir.kind == CKind::kText) return void(reply_err(req, ENOTDIR));
    if (std::string_view(name).size() > kNameMax) return void(reply_err(req, ENAMETOOLONG));
    // No negative entries: a store may appear under that name at any time.
    auto c = cat.lookup(dir, name);
    if (!c) return void(reply_err(req, ENOENT));
    fuse_entry_param e = catalog_entry(*c);
    if (fuse_reply_entry(req, &e) != 0) cat.take_back(e.ino);
  } catch (...) {
    reply_exception(req);
  }
}

void catalog_list(fuse_req_t req, CatalogFs& cat, CNode& dir, size_t size, off_t off, bool plus) {
  try {
    if (dir.kind == CKind::kText) return void(reply_err(req, ENOTDIR));
    const auto names = cat.list(dir, off <= 0);
    reply_listing(
        req, size, off, 2 + names.size(), plus,
        [&](uint64_t k, fuse_entry_param& e) -> const char* {
          if (k < 2) {
            e.attr.st_ino = k == 0 ? dir.ino : FUSE_ROOT_ID;
            e.attr.st_mode = S_IFDIR;
            return k == 0 ? "." : "..";
          }
          const auto& [name, is_dir] = names[k - 2];
          if (plus) {
            auto c = cat.lookup(dir, name);
            if (!c) return nullptr;  // gone since the listing was made
            e = catalog_entry(*c);
          } else {
            e.attr.st_ino = (uint64_t{1} << 62) + k;  // shown only; a lookup gives the number
            e.attr.st_mode = is_dir ? S_IFDIR : S_IFREG;
          }
          return name.c_str();
        },
        [&](uint64_t ino) { cat.take_back(ino); });
  } catch (...) {
    reply_exception(req);
  }
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  route(req, parent, true, [&](const Target& t) { store_lookup(req, t, name); },
        [&](CatalogFs& cat, CNode& dir) { catalog_lookup(req, cat, dir, name); });
}

void forget(fuse_req_t req, uint64_t ino, uint64_t nlookup) {
  if (CatalogFs* cat = state_of(req).catalog) cat->forget(ino, nlookup);
  else state_of(req).fs->nodes().forget(ino, nlookup);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  forget(req, ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t k = 0; k < count; ++k) forget(req, forgets[k].ino, forgets[k].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  route(req, ino, false, [&](const Target& t) { store_getattr(req, t, fi); },
        [&](CatalogFs& cat, CNode& node) {
          struct stat st = cat.attributes(node);
          fuse_reply_attr(req, &st, cat.timeout());
        });
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (state_of(req).no_open && (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC))
    return void(reply_err(req, ENOSYS));
  route(req, ino, false, [&](const Target& t) { store_open(req, t, fi); },
        [&](CatalogFs& cat, CNode& node) {
          if (node.kind != CKind::kText) return void(reply_err(req, EISDIR));
          if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return void(reply_err(req, EROFS));
          fi->keep_cache = cat.options().keep_cache;  // a text's inode never changes its bytes
          fi->noflush = 1;
          fuse_reply_open(req, fi);
        });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  route(req, ino, false, [&](const Target& t) { store_read(req, t, size, off, fi); },
        [&](CatalogFs&, CNode& node) {
          if (node.kind != CKind::kText) return void(reply_err(req, EISDIR));
          const std::string& text = *node.text;
          const size_t at = off < 0 ? text.size() : std::min<size_t>(static_cast<size_t>(off), text.size());
          reply_data(req, text.data() + at, std::min(size, text.size() - at));
        });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (state_of(req).no_opendir && (fi->flags & O_ACCMODE) == O_RDONLY) return void(reply_err(req, ENOSYS));
  route(req, ino, true, [&](const Target& t) { store_opendir(req, t, fi); },
        [&](CatalogFs& cat, CNode& node) {
          if (node.kind == CKind::kText) return void(reply_err(req, ENOTDIR));
          if ((fi->flags & O_ACCMODE) != O_RDONLY) return void(reply_err(req, EROFS));
          // A live catalog lists its directories afresh: stores come and go.
          fi->cache_readdir = fi->keep_cache = !cat.options().live;
          fuse_reply_open(req, fi);
        });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  route(req, ino, true, [&](const Target& t) { list_entries(req, t, size, off, false); },
        [&](CatalogFs& cat, CNode& dir) { catalog_list(req, cat, dir, size, off, false); });
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  route(req, ino, true, [&](const Target& t) { list_entries(req, t, size, off, true); },
        [&](CatalogFs& cat, CNode& dir) { catalog_list(req, cat, dir, size, off, true); });
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  CatalogFs* cat = state_of(req).catalog;
  if (!cat) return store_statfs(req, *state_of(req).fs);
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_files = cat->numbers_held();
  sv.f_namemax = kNameMax;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

// A callback timed for the metrics: the replies above are all sent before
// the callback returns, so its duration is the request's.
template <Op K, auto F>
struct Timed;
template <Op K, typename... A, void (*F)(fuse_req_t, A...)>
struct Timed<K, F> {
  static void call(fuse_req_t req, A... args) {
    if (!Metrics::global().enabled()) return F(req, args...);
    const auto t0 = std::chrono::steady_clock::now();
    F(req, args...);
    Metrics::global().request(K, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
};

}  // namespace

const fuse_lowlevel_ops& fuse_operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = Timed<Op::kLookup, op_lookup>::call;
    o.forget = Timed<Op::kForget, op_forget>::call;
    o.forget_multi = Timed<Op::kForget, op_forget_multi>::call;
    o.getattr = Timed<Op::kGetattr, op_getattr>::call;
    o.open = Timed<Op::kOpen, op_open>::call;
    o.read = Timed<Op::kRead, op_read>::call;
    o.opendir = Timed<Op::kOpendir, op_opendir>::call;
    o.readdir = Timed<Op::kReaddir, op_readdir>::call;
    o.readdirplus = Timed<Op::kReaddirplus, op_readdirplus>::call;
    o.statfs = Timed<Op::kStatfs, op_statfs>::call;
    o.setattr = Timed<Op::kSetattr, op_setattr>::call;
    o.mknod = Timed<Op::kRefused, op_mknod>::call;
    o.mkdir = Timed<Op::kRefused, op_mkdir>::call;
    o.unlink = Timed<Op::kRefused, op_unlink>::call;
    o.rmdir = Timed<Op::kRefused, op_unlink>::call;
    o.symlink = Timed<Op::kRefused, op_symlink>::call;
    o.rename = Timed<Op::kRefused, op_rename>::call;
    o.link = Timed<Op::kRefused, op_link>::call;
    o.write = Timed<Op::kWrite, op_write>::call;
    o.flush = Timed<Op::kFlush, op_flush>::call;
    o.fsync = Timed<Op::kFsync, op_fsync>::call;
    o.release = Timed<Op::kRelease, op_release>::call;
    o.setxattr = Timed<Op::kRefused, op_setxattr>::call;
    o.removexattr = Timed<Op::kRefused, op_removexattr>::call;
    o.create = Timed<Op::kCreate, op_create>::call;
    o.fallocate = Timed<Op::kRefused, op_fallocate>::call;
    o.ioctl = Timed<Op::kIoctl, op_ioctl>::call;
    return o;
  }();
  return ops;
}

}  // namespace blobfs
