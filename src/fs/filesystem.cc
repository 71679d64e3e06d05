#include "filesystem.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "metrics.h"
#include "tensorblob/error.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/npy.h"

namespace blobfs {

namespace {

tensorblob::NamingRules naming_of(const Options& o) { return {o.naming_width, o.npy_views, o.range_views}; }

}  // namespace

View::View(std::shared_ptr<const tensorblob::Dataset> dataset, const Options& options)
    : dataset_(std::move(dataset)),
      options_(options),
      names_(dataset_->count(), options.naming_width, options.npy_views && !dataset_->npy_descr().empty(),
             options.range_views),
      meta_(tensorblob::meta_yaml(*dataset_, naming_of(options))),
      uid_(options.uid >= 0 ? static_cast<uid_t>(options.uid) : ::getuid()),
      gid_(options.gid >= 0 ? static_cast<gid_t>(options.gid) : ::getgid()) {}

std::string View::npy_header(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kItemNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->item_shape(n.first));
    case NodeKind::kAllNpy:
    case NodeKind::kRangeNpy: return tensorblob::npy_header(dataset_->npy_descr(), dataset_->range_shape(n.first, n.last));
    default: return "";
  }
}

uint64_t View::size(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kRoot: return 0;
    case NodeKind::kMeta: return meta_.size();
    default:
      return npy_header(n).size() + dataset_->item_offset(n.last) - dataset_->item_offset(n.first);
  }
}

struct stat View::attributes(const Node& n, uint64_t ino) const {
  struct stat st {};
  st.st_ino = ino;
  st.st_uid = uid_;
  st.st_gid = gid_;
  const int64_t ns = dataset_->mtime_ns();
  st.st_mtim = st.st_ctim = st.st_atim =
      timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  st.st_blksize = 4096;
  if (n.kind == NodeKind::kRoot) {
    st.st_mode = S_IFDIR | options_.dir_mode | (options_.writable ? S_IWUSR : 0);  // new tensors are created here
    st.st_nlink = 2;
    return st;
  }
  st.st_mode = S_IFREG | options_.file_mode;
  // A writable mount's tensor files take writes (meta.yaml and all.npy never do).
  if (options_.writable && n.kind != NodeKind::kMeta && n.kind != NodeKind::kAllNpy) st.st_mode |= S_IWUSR;
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(size(n));
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

size_t View::read(const Node& n, uint64_t offset, size_t size, char* dst) const {
  if (n.kind == NodeKind::kRoot) return 0;
  if (n.kind == NodeKind::kMeta) {
    if (offset >= meta_.size()) return 0;
    size_t k = std::min<uint64_t>(size, meta_.size() - offset);
    std::memcpy(dst, meta_.data() + offset, k);
    return k;
  }
  const std::string header = npy_header(n);
  const uint64_t begin = dataset_->item_offset(n.first), end = dataset_->item_offset(n.last);
  const uint64_t total = header.size() + (end - begin);
  if (offset >= total) return 0;
  size = static_cast<size_t>(std::min<uint64_t>(size, total - offset));
  size_t done = 0;
  if (offset < header.size()) {
    done = std::min<size_t>(size, header.size() - offset);
    std::memcpy(dst, header.data() + offset, done);
  }
  if (done < size) {
    const uint64_t data_off = begin + (offset + done - header.size());
    auto* out = reinterpret_cast<std::byte*>(dst + done);
    if (options_.verify_on_read) dataset_->read_checked(data_off, size - done, out);  // wrong bytes never reach a reader
    else dataset_->read(data_off, size - done, out);
  }
  return size;
}

std::optional<tensorblob::ByteView> View::view(const Node& n, uint64_t offset, size_t size) const {
  if (n.kind == NodeKind::kRoot || n.kind == NodeKind::kMeta || options_.verify_on_read) return std::nullopt;
  const uint64_t header = npy_header(n).size();
  const uint64_t begin = dataset_->item_offset(n.first), end = dataset_->item_offset(n.last);
  if (offset < header || offset >= header + (end - begin)) return std::nullopt;
  size = static_cast<size_t>(std::min<uint64_t>(size, header + (end - begin) - offset));
  return dataset_->view_bytes(begin + (offset - header), size);
}

Filesystem::Filesystem(std::shared_ptr<tensorblob::Store> store, const Options& options)
    : store_(std::move(store)), options_(options) {
  if (options_.writable) {
    if (!options_.live)
      throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                              "writable needs a live mount: what is written must show (set live: true)");
    if (options_.verify_on_read)
      throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                              "writable and verify_on_read do not go together: a commit drops the per-item hashes "
                              "that verify_on_read needs, so the mount could never show its own writes");
    if (tensorblob::store_kind(store_->snapshot()->source()) != tensorblob::StoreKind::kBlob)
      throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                              store_->snapshot()->source() +
                                  ": only a fixed-shape blob mounts writable; a ragged dataset stays read-only "
                                  "(an appended item would need picomap's content hash recomputed over every item)");
    writes_ = std::make_unique<BlobWrites>(store_->snapshot()->source());
  }
  auto v = std::make_shared<const View>(store_->snapshot(), options_);
  check_servable(*v);
  view_ = std::move(v);
}

void Filesystem::check_servable(const View& v) const {
  const tensorblob::Dataset& ds = v.dataset();
  if (ds.count() > tensorblob::kMaxMountedCount)
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                            ds.source() + ": " + std::to_string(ds.count()) + " items are more than a mount serves (" +
                                std::to_string(tensorblob::kMaxMountedCount) + ", 2^61 - 1)");
  if (options_.verify_on_read && !ds.item_hashes())
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                            ds.source() + ": verify_on_read needs current per-item hashes, and they are " +
                                ds.facts().item_hashes);
}

std::shared_ptr<const View> Filesystem::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

std::shared_ptr<const View> Filesystem::view(uint64_t* generation) const {
  std::lock_guard<std::mutex> lock(mu_);
  *generation = generation_;
  return view_;
}

bool Filesystem::refresh_and_queue() {
  std::optional<Refresh> r = refresh();
  if (!r) return false;
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_.push_back(std::move(*r));
    wake = wake_;
  }
  if (wake) wake();
  return true;
}

std::vector<Filesystem::Refresh> Filesystem::take_pending() {
  std::lock_guard<std::mutex> lock(pending_mu_);
  return std::exchange(pending_, {});
}

void Filesystem::on_pending(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(pending_mu_);
  wake_ = std::move(wake);
}

std::optional<Filesystem::Refresh> Filesystem::refresh() {
  std::lock_guard<std::mutex> serial(refresh_mu_);
  using Result = Metrics::RefreshResult;
  std::optional<tensorblob::StoreChange> change;
  std::shared_ptr<const View> next;
  try {
    change = store_->refresh();
    if (!change) {
      Metrics::global().refresh(Result::kUnchanged);
      return std::nullopt;
    }
    next = std::make_shared<const View>(change->after, options_);
    // A commit that cannot be served (too many items; no hashes to verify it
    // against) leaves the mount on the last one it could.
    check_servable(*next);
  } catch (...) {
    Metrics::global().refresh(Result::kFailed);
    throw;
  }
  Metrics::global().refresh(Result::kCommit);
  std::shared_ptr<const View> before;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    before = std::exchange(view_, next);
    generation = ++generation_;
  }
  // From here a lookup answered from `before` is set aside; the ones
  // answered before are in held(). The kernel is told after the swap, so a
  // read it sends after forgetting gets the new bytes.
  nodes_.set_generation(generation);
  std::vector<std::pair<uint64_t, Node>> held;
  for (uint64_t ino : nodes_.held()) {
    std::optional<Node> n = Namespace::is_dynamic_ino(ino) ? nodes_.find(ino) : before->names().from_ino(ino);
    if (n) held.emplace_back(ino, *n);
  }
  // The store moves on even when a commit could not be served (check_servable
  // threw): the view may be older than the change's `before`, and what the
  // kernel must forget is what differs from the view.
  std::vector<std::pair<int64_t, int64_t>> rewritten = &before->dataset() == change->before.get()
                                                           ? std::move(change->rewritten)
                                                           : store_->rewritten(before->dataset(), *change->after);
  Refresh r;
  r.plan = plan_invalidation(*before, *next, rewritten, held);
  r.before = before->dataset().count();
  r.after = next->dataset().count();
  return r;
}

Invalidation Filesystem::plan_late(const std::vector<uint64_t>& inos) const {
  // Rare and racy by nature: forget these files wholly, and the name of
  // any that the current view no longer has.
  Invalidation out;
  auto v = view();
  // A fixed number decodes to the same node whatever the count.
  const Namespace any(tensorblob::kMaxMountedCount, options_.naming_width, true, true);
  const uint64_t root = *Namespace::fixed_ino(Node{NodeKind::kRoot});
  for (uint64_t ino : inos) {
    out.inodes.push_back({ino, 0, 0});
    std::optional<Node> n = Namespace::is_dynamic_ino(ino) ? nodes_.find(ino) : any.from_ino(ino);
    if (n && !v->names().contains(*n)) out.entries.push_back({root, v->names().name(*n)});
  }
  return out;
}

void Filesystem::forget_uncommitted(const Node& node, uint64_t ino) {
  Refresh r;
  r.plan.inodes.push_back({ino, -1, 0});  // attributes only: the size the kernel saw grow
  auto v = view();
  if (!v->names().contains(node)) {
    r.plan.entries.push_back({*Namespace::fixed_ino(Node{NodeKind::kRoot}), v->names().name(node)});
    r.plan.inodes.back().offset = 0;
  }
  r.before = r.after = v->dataset().count();
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_.push_back(std::move(r));
    wake = wake_;
  }
  if (wake) wake();
}

size_t Filesystem::hold_files() { return view()->dataset().hold_files(); }

std::optional<Node> Filesystem::node_of(const View& view, uint64_t ino) const {
  if (!Namespace::is_dynamic_ino(ino)) return view.names().from_ino(ino);
  auto n = nodes_.find(ino);
  if (!n || !view.names().contains(*n)) return std::nullopt;
  return n;
}

uint64_t Filesystem::ino_for_lookup(const Node& node, uint64_t generation) const {
  if (auto ino = Namespace::fixed_ino(node)) {
    // A frozen mount never asks what the kernel holds: no table to keep.
    if (options_.live && node.kind != NodeKind::kRoot) nodes_.count(*ino, generation);
    return *ino;
  }
  return nodes_.acquire(node, generation);
}

}  // namespace blobfs

namespace blobfs {

void SameInodes::take_back(uint64_t kernel) { fs_.nodes().forget(kernel, 1); }

}  // namespace blobfs
