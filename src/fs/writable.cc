#include "writable.h"

#include <cerrno>
#include <vector>

#include "errors.h"
#include "tensorblob/error.h"

namespace blobfs {

namespace {

// Commits move data in pieces of about this much, so a handle that wrote a
// gigabyte needs no gigabyte of memory to commit.
constexpr int64_t kPieceBytes = 8 << 20;

}  // namespace

BlobWrites::BlobWrites(const std::string& source)
    : blob_(tensorblob::Blob::open(source, "r+")), dir_(tensorblob::open_posix_storage(source)) {}

BlobShape BlobWrites::shape() const {
  BlobShape s;
  s.count = blob_.size();
  s.item_bytes = blob_.item_bytes();
  s.typestr = std::string(tensorblob::dtype_info(blob_.dtype()).typestr);
  s.shape = blob_.shape();
  return s;
}

std::shared_ptr<BlobWrites::Open> BlobWrites::find(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(id);
  return it == handles_.end() ? nullptr : it->second;
}

uint64_t BlobWrites::open(const Node& node, bool truncated, bool created, bool append) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  // Hidden and named for this process, so the next writer to open the blob
  // removes it if the daemon dies (filenames: temp_name).
  auto staging = std::make_unique<Staging>(dir_, tensorblob::temp_name(".write." + std::to_string(id)));
  auto open = std::make_shared<Open>();
  open->handle = std::make_unique<WriteHandle>(node, shape(), truncated, created, std::move(staging));
  open->node = node;
  open->created = created;
  if (append) open->handle->set_append();
  handles_[id] = std::move(open);
  return id;
}

std::optional<uint64_t> BlobWrites::size(uint64_t id) const {
  std::shared_ptr<Open> o = find(id);
  if (!o) return std::nullopt;
  std::lock_guard<std::mutex> lock(o->mu);
  return o->handle->size();
}

std::optional<Node> BlobWrites::node(uint64_t id) const {
  std::shared_ptr<Open> o = find(id);
  if (!o) return std::nullopt;
  std::lock_guard<std::mutex> lock(o->mu);
  return o->handle->node();
}

std::optional<uint64_t> BlobWrites::created_size(const Node& node) const {
  std::shared_ptr<Open> found;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, open] : handles_)
      if (open->created && open->node == node) found = open;
  }
  if (!found) return std::nullopt;
  std::lock_guard<std::mutex> hlock(found->mu);  // after mu_ is released: the lock order
  return found->handle->size();
}

size_t BlobWrites::read(uint64_t id, uint64_t offset, size_t n, char* dst) const {
  std::shared_ptr<Open> o = find(id);
  if (!o) return 0;
  std::lock_guard<std::mutex> lock(o->mu);
  const uint64_t size = o->handle->size();
  if (offset >= size) return 0;
  n = static_cast<size_t>(std::min<uint64_t>(n, size - offset));
  std::lock_guard<std::mutex> blob_lock(mu_);
  o->handle->read(offset, n, reinterpret_cast<std::byte*>(dst),
                  [&](uint64_t at, size_t k, std::byte* out) { blob_.read_bytes(static_cast<int64_t>(at), static_cast<int64_t>(k), out); });
  return n;
}

int BlobWrites::write(uint64_t id, uint64_t offset, const void* data, size_t n) {
  std::shared_ptr<Open> o = find(id);
  if (!o) return EBADF;
  std::lock_guard<std::mutex> lock(o->mu);
  try {
    return o->handle->write(offset, data, n);
  } catch (const tensorblob::Error& e) {
    return errno_for(e);  // the staging file's disk is full
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
}

int BlobWrites::apply(const WriteHandle& h, const WritePlan& p) {
  const int64_t item = blob_.item_bytes(), piece = std::max<int64_t>(1, kPieceBytes / item);
  std::vector<std::byte> buf;
  const BlobReader committed = [&](uint64_t at, size_t k, std::byte* out) {
    blob_.read_bytes(static_cast<int64_t>(at), static_cast<int64_t>(k), out);
  };
  if (p.replace) blob_.resize(0);
  for (int64_t t = p.first; t < p.first + p.count; t += piece) {
    const int64_t k = std::min(piece, p.first + p.count - t);
    buf.resize(static_cast<size_t>(k * item));
    h.rewritten(t, k, buf.data(), committed);
    blob_.seek(t);
    blob_.write_raw(buf.data(), k);
  }
  for (int64_t k0 = 0; k0 < p.append; k0 += piece) {
    const int64_t k = std::min(piece, p.append - k0);
    buf.resize(static_cast<size_t>(k * item));
    h.appended(k0, k, buf.data());
    blob_.seek(0, tensorblob::Whence::kEnd);
    blob_.write_raw(buf.data(), k);
  }
  blob_.flush();
  return 0;
}

int BlobWrites::commit(uint64_t id, bool* changed) {
  *changed = false;
  std::shared_ptr<Open> o = find(id);
  if (!o) return EBADF;
  std::lock_guard<std::mutex> lock(o->mu);
  std::lock_guard<std::mutex> blob_lock(mu_);
  WritePlan plan;
  try {
    if (int err = o->handle->plan(shape(), plan)) return err;
  } catch (const tensorblob::Error& e) {
    return errno_for(e);  // the staged bytes could not be read: nothing changed
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  if (plan.replace || plan.count || plan.append) {
    try {
      apply(*o->handle, plan);
    } catch (const tensorblob::Error& e) {
      // Nothing of this handle is committed: the last commit stays.
      blob_.discard();
      return errno_for(e);
    } catch (const std::bad_alloc&) {
      blob_.discard();
      return ENOMEM;
    }
    *changed = true;
  }
  o->handle->committed(shape());
  return 0;
}

void BlobWrites::release(uint64_t id) {
  std::shared_ptr<Open> gone;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(id);
  if (it == handles_.end()) return;
  gone = std::move(it->second);
  handles_.erase(it);
}

int BlobWrites::truncate(uint64_t size, bool* changed) {
  *changed = false;
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t item = static_cast<uint64_t>(blob_.item_bytes()), now = static_cast<uint64_t>(blob_.size()) * item;
  if (size == now) return 0;
  if (size % item != 0 || size > now) return EINVAL;  // not whole tensors, or growing with tensors of nothing
  try {
    blob_.truncate(static_cast<int64_t>(size / item));
  } catch (const tensorblob::Error& e) {
    blob_.discard();
    return errno_for(e);
  }
  *changed = true;
  return 0;
}

}  // namespace blobfs
