#include "blob_store.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "filenames.h"
#include "shared_work.h"
#include "tensorblob/error.h"
#include "tensorblob/fault_guard.h"

namespace tensorblob {

namespace {

// Gathers at least this large are shared with the helper thread
// (shared_work.h): below it, handing over costs more than a second core saves.
constexpr uint64_t kSharedGatherBytes = 512 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

// One store per directory per process, so every reader and writer of it
// here shares its Block objects (and a doomed block outlives every reader).
std::mutex g_registry_mu;
std::unordered_map<std::string, std::weak_ptr<BlobStore>>& registry() {
  static auto* r = new std::unordered_map<std::string, std::weak_ptr<BlobStore>>();
  return *r;
}

}  // namespace

// --- Block -------------------------------------------------------------

Block::Block(std::shared_ptr<BlobStore> store, std::string name) : store_(std::move(store)), name_(std::move(name)) {}

Block::~Block() { store_->block_gone(this, name_, doomed_.load()); }

void Block::note_committed_rows(int64_t rows) {
  int64_t cur = committed_rows_.load(std::memory_order_relaxed);
  while (rows > cur && !committed_rows_.compare_exchange_weak(cur, rows, std::memory_order_relaxed)) {
  }
}

std::optional<FileInfo> Block::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

void Block::set_seen(const FileInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!seen_) seen_ = info;
}

// --- BlobStore ---------------------------------------------------------

BlobStore::BlobStore(std::shared_ptr<Storage> storage, size_t max_cached, Access access)
    : storage_(std::move(storage)), access_(access), cache_(max_cached ? max_cached : default_max_cached_blocks()) {}

BlobStore::~BlobStore() {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  auto it = registry().find(storage_->identity());
  if (it != registry().end() && it->second.expired()) registry().erase(it);
}

std::shared_ptr<BlobStore> BlobStore::get(std::shared_ptr<Storage> storage, size_t max_cached, Access access) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  auto& slot = registry()[storage->identity()];
  if (auto existing = slot.lock()) {
    existing->cache_.raise_capacity(max_cached ? max_cached : default_max_cached_blocks());
    return existing;
  }
  auto store = std::shared_ptr<BlobStore>(new BlobStore(std::move(storage), max_cached, access));
  slot = store;
  return store;
}

void BlobStore::block_gone(const Block* block, const std::string& name, bool doomed) {
  cache_.erase(block);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(name);
    if (it != blocks_.end() && it->second.expired()) blocks_.erase(it);
  }
  if (doomed) {
    try {
      storage_->remove(name);
    } catch (const Error&) {
      // Left behind, it is a stray file the next writer removes.
    }
  }
}

std::shared_ptr<Block> BlobStore::block(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = blocks_[name];
  if (auto b = slot.lock()) return b;
  auto b = std::make_shared<Block>(shared_from_this(), name);
  slot = b;
  return b;
}

bool BlobStore::has_live_block(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.find(name);
  return it != blocks_.end() && !it->second.expired();
}

std::shared_ptr<const BlobSnapshot> BlobStore::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_.lock();
}

void BlobStore::publish(std::shared_ptr<const BlobSnapshot> snap) {
  auto info = storage_->stat(kStatName);
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(snap);
  stat_info_ = info;
}

std::shared_ptr<const BlobSnapshot> BlobStore::make_snapshot(const BlobState& state, const std::string& stat_text) {
  int64_t mtime = 0;
  std::optional<FileInfo> hashes;
  try {
    if (auto info = storage_->stat(kStatName)) mtime = info->mtime_ns;
    hashes = storage_->stat(kBlobHashesName);
  } catch (const Error&) {
  }
  return std::make_shared<const BlobSnapshot>(shared_from_this(), state, stat_text, mtime, hashes);
}

std::shared_ptr<const BlobSnapshot> BlobStore::load() {
  const std::string conf_path = path_of_name(kConfName), stat_path = path_of_name(kStatName);
  auto conf_info = storage_->stat(kConfName);
  if (!conf_info) throw Error(Errc::kNotFound, conf_path + ": missing; not a tensorblob directory", ENOENT);

  std::lock_guard<std::mutex> load_lock(load_mu_);
  // The config first: a blob whose .conf is damaged is reported as such,
  // whatever its .stat holds.
  std::optional<BlobConf> conf;
  std::shared_ptr<const BlobSnapshot> cur;
  std::optional<FileInfo> last_stat;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (conf_ && conf_info_ == conf_info) conf = conf_;
    cur = current_.lock();
    last_stat = stat_info_;
  }
  if (!conf) conf = parse_blob_conf(storage_->read_small(kConfName), conf_path);

  // Python rewrites .stat in place (truncate, write): a read racing that
  // sees it empty or cut. Read until the file is the same before and after.
  std::string text;
  std::optional<FileInfo> stat_info;
  BlobStatus status;
  for (int attempt = 0;; ++attempt) {
    auto before = storage_->stat(kStatName);
    if (!before) throw Error(Errc::kNotFound, stat_path + ": status file missing; the blob is damaged", ENOENT);
    text = storage_->read_small(kStatName);
    stat_info = storage_->stat(kStatName);
    if (attempt < 3 && stat_info != before) continue;
    try {
      status = parse_blob_status(text, stat_path);
      break;
    } catch (const FormatError&) {
      if (attempt >= 2) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  // A .stat rewritten where it stands (its inode kept) was written by a
  // writer that changes blocks in place, too: those we have opened are
  // checked. A .stat replaced by rename is ours: a block of ours is never
  // changed below its committed rows, so a name still listed is unchanged.
  const bool in_place = last_stat && stat_info && stat_info->inode == last_stat->inode && *stat_info != *last_stat;
  const std::optional<FileInfo> hashes_info = storage_->stat(kBlobHashesName);
  if (cur && text == cur->stat_text() && !in_place && cur->hashes_info() == hashes_info &&
      cur->conf().block_bytes == conf->block_bytes && cur->conf().dtype == conf->dtype &&
      cur->conf().shape == conf->shape) {
    std::lock_guard<std::mutex> lock(mu_);
    stat_info_ = stat_info;
    conf_ = conf;
    conf_info_ = conf_info;
    return cur;
  }

  const int64_t needed = ceil_div(status.len, conf->block_size);
  if (static_cast<int64_t>(status.blocks.size()) < needed)
    throw FormatError(stat_path + ": " + std::to_string(status.len) + " tensors need " + std::to_string(needed) +
                      " blocks of " + std::to_string(conf->block_size) + " but only " +
                      std::to_string(status.blocks.size()) + " are listed");
  BlobState state;
  state.conf = *conf;
  state.len = status.len;
  state.blocks.reserve(status.blocks.size());
  for (const auto& name : status.blocks) {
    std::shared_ptr<Block> b = block(name);
    if (in_place) {
      if (auto seen = b->seen()) {
        auto now = storage_->stat(name);
        if (!now || now->inode != seen->inode || now->mtime_ns != seen->mtime_ns || now->size != seen->size ||
            now->etag != seen->etag) {
          // Changed where it stands: a new object, so this snapshot tells it
          // apart from older ones and opens the file afresh.
          auto fresh = std::make_shared<Block>(shared_from_this(), name);
          {
            std::lock_guard<std::mutex> lock(mu_);
            blocks_[name] = fresh;
          }
          b = fresh;  // outside mu_: dropping the last reference runs ~Block, which takes it
        }
      }
    }
    state.blocks.push_back(std::move(b));
  }
  for (size_t k = 0; k < state.blocks.size(); ++k) {
    const int64_t rows = std::clamp<int64_t>(state.len - static_cast<int64_t>(k) * conf->block_size, 0, conf->block_size);
    state.blocks[k]->note_committed_rows(rows);
  }
  auto snap = std::make_shared<const BlobSnapshot>(shared_from_this(), std::move(state), text,
                                                   stat_info ? stat_info->mtime_ns : 0, hashes_info);
  std::lock_guard<std::mutex> lock(mu_);
  current_ = snap;
  stat_info_ = stat_info;
  conf_ = conf;
  conf_info_ = conf_info;
  return snap;
}

std::string BlobStore::path_of_name(const char* name) const { return storage_->path_of(name); }

std::shared_ptr<ReadableFile> BlobStore::open_block(const BlobState& state, size_t b) const {
  const Block& block = *state.blocks[b];
  const std::string p = storage_->path_of(block.name());
  std::unique_ptr<ReadableFile> f;
  try {
    f = storage_->open(block.name(), access_);
  } catch (const Error& e) {
    // A missing or short block is reported by name rather than read as zeros
    // (src/store/FORMATS.md 3.7).
    if (e.code() == Errc::kNotFound) throw Error(Errc::kNotFound, p + ": block file listed in .stat is missing", ENOENT);
    if (e.code() == Errc::kFormat) {
      auto info = storage_->stat(block.name());
      if (info && info->kind == FileKind::kSymlink) throw Error(Errc::kFormat, p + ": block file is a symbolic link");
      throw Error(Errc::kFormat, p + ": block file is not a regular file (" +
                                     (info ? describe(info->kind) : "gone") + ")");
    }
    throw;
  }
  // A block object holds at least the rows its commit shows (tblob push
  // sends a last block only that far); a local block file is whole.
  const int64_t rows = std::clamp<int64_t>(state.len - static_cast<int64_t>(b) * state.conf.block_size, 0,
                                           state.conf.block_size);
  const int64_t need = storage_->holds_objects() ? rows * state.conf.item_bytes : state.conf.block_bytes;
  if (static_cast<int64_t>(f->size()) < need)
    throw Error(Errc::kFormat, p + ": block file is " + std::to_string(f->size()) + " bytes, expected " +
                                   std::to_string(need) +
                                   (storage_->holds_objects() ? " (its committed rows × item bytes)"
                                                              : " (block_size × item bytes)"));
  const_cast<Block&>(block).set_seen(f->info());
  return f;
}

std::shared_ptr<ReadableFile> BlobStore::file(const BlobState& state, size_t b) const {
  return cache_.get(state.blocks[b].get(), [&] { return open_block(state, b); });
}

// --- reading a state -----------------------------------------------------

namespace {

// Block b's file shrank under a reader: forgets the open file, so the next
// access opens it afresh and reports its size.
[[noreturn]] void block_shrank(const BlobStore& store, const BlobState& state, size_t b) {
  store.forget(state.blocks[b].get());
  throw Error(Errc::kIo,
              store.storage().path_of(state.blocks[b]->name()) +
                  ": block file shrank while it was read (truncated by another process?)",
              EIO);
}

}  // namespace

namespace {

// A reader that checked its range against one commit may be retried on a
// later, shorter one (reading() after a block vanished): checked again here,
// where the blocks are indexed.
void check_in_state(const BlobStore& store, const BlobState& state, int64_t offset, int64_t n) {
  const int64_t end = state.len * state.conf.item_bytes;
  if (offset < 0 || n < 0 || offset > end || n > end - offset)
    throw Error(Errc::kOutOfRange, store.storage().location() + ": bytes [" + std::to_string(offset) + ", " +
                                       std::to_string(offset + n) + ") are past the end of the commit (" +
                                       std::to_string(state.len) + " tensors)");
}

// A reader going through the blocks in order (all.bin, an export) goes on
// into the next block: where blocks are fetched ahead, so is it. `end` is
// where the read in block `b` ended.
void read_on_into_next_block(const BlobStore& store, const BlobState& state, size_t b, const ReadableFile& f,
                             uint64_t end) {
  const uint64_t bb = static_cast<uint64_t>(state.conf.block_bytes);
  const uint64_t window = f.read_ahead(end);
  if (window == 0 || end + window <= bb || b + 1 >= state.blocks.size() ||
      static_cast<int64_t>(b + 1) * state.conf.block_size >= state.len)
    return;
  try {
    store.file(state, b + 1)->continue_read_ahead(end + window - bb);
  } catch (const Error&) {
    // Only a hint: the read that needs the block reports what is wrong.
  }
}

}  // namespace

void read_state_bytes(const BlobStore& store, const BlobState& state, int64_t offset, int64_t n, std::byte* dst) {
  check_in_state(store, state, offset, n);
  const int64_t bb = state.conf.block_bytes;
  while (n > 0) {
    const int64_t b = offset / bb, off = offset % bb, k = std::min(bb - off, n);
    std::shared_ptr<ReadableFile> f;
    try {
      f = store.file(state, static_cast<size_t>(b));
      f->read(static_cast<uint64_t>(off), static_cast<size_t>(k), dst);
    } catch (const Error& e) {
      if (e.code() == Errc::kIo && e.sys_errno() == ENODATA) block_shrank(store, state, static_cast<size_t>(b));
      throw;
    }
    read_on_into_next_block(store, state, static_cast<size_t>(b), *f, static_cast<uint64_t>(off + k));
    dst += k;
    offset += k;
    n -= k;
  }
}

ItemView state_item_view(const BlobStore& store, const BlobState& state, int64_t index) {
  const BlobConf& c = state.conf;
  check_in_state(store, state, index * c.item_bytes, c.item_bytes);
  // A view of a mapping keeps the mapping, not the descriptor: it stays valid
  // after the file leaves the cache.
  return store.file(state, static_cast<size_t>(index / c.block_size))
      ->view(static_cast<uint64_t>((index % c.block_size) * c.item_bytes), static_cast<size_t>(c.item_bytes));
}

void gather_state(const BlobStore& store, const BlobState& state, std::span<const int64_t> indices, std::byte* out,
                  bool helper_thread) {
  const int64_t item = state.conf.item_bytes, B = state.conf.block_size;
  std::vector<std::pair<int64_t, size_t>> order(indices.size());  // (tensor, output slot)
  for (size_t k = 0; k < indices.size(); ++k) order[k] = {indices[k], k};
  std::sort(order.begin(), order.end());
  // Resolve every source address first (one cache lookup per block touched),
  // so the copy loop can prefetch a few tensors ahead: random tensors are
  // DRAM-latency bound, and overlapping the misses is what beats memcpy.
  std::vector<std::shared_ptr<ReadableFile>> held;
  std::vector<size_t> file_of(order.size());
  bool all_mapped = true;
  int64_t open_block = -1;
  for (size_t k = 0; k < order.size(); ++k) {
    const int64_t b = order[k].first / B;
    if (b != open_block) {
      open_block = b;
      held.push_back(store.file(state, static_cast<size_t>(b)));
      all_mapped = all_mapped && held.back()->mapped();
    }
    file_of[k] = held.size() - 1;
  }
  const size_t n = order.size();
  if (!all_mapped) {  // read with pread: nothing to prefetch
    for (size_t k = 0; k < n; ++k) {
      try {
        held[file_of[k]]->read(static_cast<uint64_t>((order[k].first % B) * item), static_cast<size_t>(item),
                               out + order[k].second * item);
      } catch (const Error& e) {
        if (e.code() == Errc::kIo && e.sys_errno() == ENODATA) block_shrank(store, state, static_cast<size_t>(order[k].first / B));
        throw;
      }
    }
    return;
  }
  std::vector<const std::byte*> from(n);
  for (size_t k = 0; k < n; ++k) from[k] = held[file_of[k]]->mapped() + (order[k].first % B) * item;
  constexpr size_t kAhead = 8, kLines = 48;
  // A second core only pays for its hand-over on large gathers.
  const bool share = helper_thread && static_cast<uint64_t>(item) * n >= kSharedGatherBytes;
  std::atomic<size_t> faulted{SIZE_MAX};  // the first step whose copy faulted
  run_shared(n, share, [&](size_t k, int dir) {
    const size_t ahead = dir > 0 ? k + kAhead : k - kAhead;  // wraps past 0 to a huge value
    if (ahead < n)
      for (size_t line = 0; line < kLines && static_cast<int64_t>(line * 64) < item; ++line)
        __builtin_prefetch(from[ahead] + line * 64);
    if (!guarded_copy(out + order[k].second * item, from[k], static_cast<size_t>(item))) {
      size_t seen = faulted.load(std::memory_order_relaxed);
      while (k < seen && !faulted.compare_exchange_weak(seen, k, std::memory_order_relaxed)) {
      }
    }
  });
  if (const size_t k = faulted.load(); k != SIZE_MAX) block_shrank(store, state, static_cast<size_t>(order[k].first / B));
  // Whether each file still reaches the end of its last tensor copied (the
  // order is sorted): one check per block, not one per tensor. A file cut
  // inside a page reads as zeros there instead of faulting.
  for (size_t k = 0; k < n; ++k) {
    if (k + 1 < n && file_of[k + 1] == file_of[k]) continue;
    const auto& f = *held[file_of[k]];
    const uint64_t end = static_cast<uint64_t>((order[k].first % B + 1) * item);
    if (fault_guard_installed() && !f.reaches(end))
      block_shrank(store, state, static_cast<size_t>(order[k].first / B));
  }
}

std::vector<std::pair<int64_t, int64_t>> rewritten_tensors(const BlobState& before, const BlobState& after) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const int64_t B = after.conf.block_size, len = std::min(before.len, after.len);
  if (B != before.conf.block_size || after.conf.item_bytes != before.conf.item_bytes) {
    if (len > 0) out.emplace_back(0, len);
    return out;
  }
  const size_t nb = std::min(before.blocks.size(), after.blocks.size());
  for (size_t b = 0; b < nb && static_cast<int64_t>(b) * B < len; ++b) {
    if (before.blocks[b] == after.blocks[b]) continue;
    const int64_t first = static_cast<int64_t>(b) * B, last = std::min(first + B, len);
    if (!out.empty() && out.back().second == first) out.back().second = last;
    else out.emplace_back(first, last);
  }
  return out;
}

// --- BlobSnapshot ----------------------------------------------------------

BlobSnapshot::BlobSnapshot(std::shared_ptr<BlobStore> store, BlobState state, std::string stat_text, int64_t mtime_ns,
                           std::optional<FileInfo> hashes_info)
    : store_(std::move(store)), state_(std::move(state)), stat_text_(std::move(stat_text)),
      stat_digest_(item_digest(stat_text_.data(), stat_text_.size())), mtime_ns_(mtime_ns),
      hashes_info_(std::move(hashes_info)) {
  static std::atomic<uint64_t> generation{0};
  version_ = stat_text_ + "#" + std::to_string(++generation);
}

Shape BlobSnapshot::range_shape(int64_t first, int64_t last) const {
  Shape s = state_.conf.shape;
  s.insert(s.begin(), last - first);
  return s;
}

uint64_t BlobSnapshot::item_offset(int64_t i) const {
  return static_cast<uint64_t>(i) * static_cast<uint64_t>(state_.conf.item_bytes);
}

int64_t BlobSnapshot::item_at(uint64_t offset) const {
  return static_cast<int64_t>(offset / static_cast<uint64_t>(state_.conf.item_bytes));
}

ItemView BlobSnapshot::item_view(int64_t i) const {
  if (i < 0 || i >= state_.len)
    throw Error(Errc::kOutOfRange, source() + ": index " + std::to_string(i) + " out of range for a blob of " +
                                       std::to_string(state_.len) + " tensors");
  try {
    return state_item_view(*store_, state_, i);
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(held_mu_);
    const size_t b = static_cast<size_t>(i / state_.conf.block_size);
    if (e.code() != Errc::kNotFound || b >= held_.size()) throw;
    return held_[b]->view(static_cast<uint64_t>((i % state_.conf.block_size) * state_.conf.item_bytes),
                          static_cast<size_t>(state_.conf.item_bytes));
  }
}

void BlobSnapshot::read(uint64_t offset, size_t size, std::byte* dst) const {
  const uint64_t total = item_offset(state_.len);
  if (offset > total || size > total - offset)
    throw Error(Errc::kOutOfRange, source() + ": bytes [" + std::to_string(offset) + ", " +
                                       std::to_string(offset + size) + ") out of range for " + std::to_string(total) +
                                       " bytes of tensors");
  try {
    read_state_bytes(*store_, state_, static_cast<int64_t>(offset), static_cast<int64_t>(size), dst);
  } catch (const Error& e) {
    // A block a later commit removed: a frozen snapshot still has it open.
    if (e.code() != Errc::kNotFound || !read_held(offset, size, dst)) throw;
  }
}

std::optional<ByteView> BlobSnapshot::view_bytes(uint64_t offset, size_t size) const {
  const uint64_t bb = static_cast<uint64_t>(state_.conf.block_bytes);
  if (size == 0 || offset / bb != (offset + size - 1) / bb) return std::nullopt;
  check_in_state(*store_, state_, static_cast<int64_t>(offset), static_cast<int64_t>(size));
  const size_t b = static_cast<size_t>(offset / bb);
  std::shared_ptr<ReadableFile> f;
  try {
    f = store_->file(state_, b);
  } catch (const Error&) {
    return std::nullopt;  // read() reports it (or finds the block held)
  }
  if (f->mapped() || !store_->storage().holds_objects()) return std::nullopt;
  ByteView v = f->view(offset % bb, size);
  read_on_into_next_block(*store_, state_, b, *f, offset % bb + size);
  return v;
}

bool BlobSnapshot::read_held(uint64_t offset, size_t size, std::byte* dst) const {
  std::lock_guard<std::mutex> lock(held_mu_);
  const uint64_t bb = static_cast<uint64_t>(state_.conf.block_bytes);
  if (held_.size() < (offset + size + bb - 1) / bb) return false;
  while (size > 0) {
    const uint64_t b = offset / bb, off = offset % bb, k = std::min<uint64_t>(bb - off, size);
    held_[b]->read(off, static_cast<size_t>(k), dst);
    dst += k;
    offset += k;
    size -= static_cast<size_t>(k);
  }
  return true;
}

size_t BlobSnapshot::hold_files() const {
  std::vector<std::shared_ptr<ReadableFile>> files;
  const int64_t used = ceil_div(state_.len, state_.conf.block_size);
  for (int64_t b = 0; b < used; ++b) {
    try {
      // Not mapped: a frozen mount of a large store would otherwise map it all.
      files.push_back(store_->storage().open(state_.blocks[static_cast<size_t>(b)]->name(), Access::kPread));
    } catch (const Error&) {
      break;  // out of descriptors, or already gone: hold what could be held
    }
  }
  std::lock_guard<std::mutex> lock(held_mu_);
  held_ = std::move(files);
  return held_.size();
}

void BlobSnapshot::load_hashes() const {
  std::call_once(hashes_once_, [&] {
    try {
      auto h = ItemHashes::open(store_->storage(), kBlobHashesName);
      if (!h) {
        hashes_status_ = "none recorded (tblob verify --update records per-tensor hashes)";
      } else if (h->key() == stat_digest_ && h->count() == state_.len) {
        hashes_status_ = "per-tensor xxh3-128 recorded for " + std::to_string(h->count()) + " tensors (.hashes.npy)";
        hashes_ = std::move(h);
      } else {
        hashes_status_ = "stale: .hashes.npy was recorded before the blob changed (tblob verify --update)";
      }
    } catch (const Error& e) {
      // An optional sidecar that is damaged is reported, never fatal.
      hashes_status_ = std::string("damaged: ") + e.what() + " (tblob verify --update rewrites it)";
    }
  });
}

const ItemHashes* BlobSnapshot::item_hashes() const {
  load_hashes();
  return hashes_.get();
}

DatasetFacts BlobSnapshot::facts() const {
  load_hashes();
  DatasetFacts f;
  f.format = "tensorblob";
  f.source = source();
  f.dtype_name = dtype_name();
  f.typestr = npy_descr();
  f.shape = state_.conf.shape;
  f.item_bytes = state_.conf.item_bytes;
  f.count = state_.len;
  f.total_bytes = item_offset(state_.len);
  f.block_size = state_.conf.block_size;
  f.blocks = ceil_div(state_.len, state_.conf.block_size);
  f.item_hashes = hashes_status_;
  return f;
}

}  // namespace tensorblob
