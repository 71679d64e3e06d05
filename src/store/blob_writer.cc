#include "blob_writer.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <functional>

#include "filenames.h"
#include "shared_work.h"
#include "tensorblob/error.h"

namespace tensorblob {

namespace {

// Writes of 1 MB and more that span blocks are shared with the helper thread
// (shared_work.h), in pieces of at most 2 MB: each block is its own file, so
// two threads fill two files at once, and pieces end on 2 MB boundaries of
// their file so no two share a page (a partly written page would have to be
// read or zeroed first).
constexpr uint64_t kSharedWriteBytes = 1 << 20;
constexpr int64_t kWritePieceBytes = 2 << 20;
// Disk space is reserved ahead of the data in steps of this much (or the
// whole block when it is smaller): a full disk is an error at the write that
// needs the space, and a blob of few huge tensors does not reserve a whole
// block (gigabytes) for one of them.
constexpr uint64_t kReserveStep = 8 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

bool process_alive(std::string_view pid_text) {
  int pid = 0;
  auto [p, ec] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
  if (ec != std::errc() || p != pid_text.data() + pid_text.size() || pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

}  // namespace

BlobWriter::BlobWriter(std::shared_ptr<BlobStore> store, std::unique_ptr<StorageLock> lock,
                       std::shared_ptr<const BlobSnapshot> base, bool helper_thread)
    : store_(std::move(store)), base_(std::move(base)), lock_(std::move(lock)), helper_thread_(helper_thread),
      draft_(base_->state()) {
  sweep_strays();
}

BlobWriter::~BlobWriter() { discard(); }

void BlobWriter::sweep_strays() {
  // Only files we can tell we made: a block name with our tag that no
  // commit lists and nothing in this process holds, and our temporaries.
  // Python's orphans and anything else are left alone (tblob verify lists them).
  std::set<std::string> listed;
  for (const auto& b : base_->state().blocks) listed.insert(b->name());
  Storage& st = store_->storage();
  for (const auto& name : st.list()) {
    bool remove = false;
    if (is_our_block_name(name)) {
      remove = !listed.count(name) && !store_->has_live_block(name);
    } else if (is_temp_name(name)) {
      // .stat and .conf temporaries are only ever written under this lock;
      // others (a sidecar's from tblob verify --update, a writable mount's
      // staging) belong to the process named in them, while it lives.
      const bool writer_only = name.starts_with(".stat.tmp") || name.starts_with(".conf.tmp");
      const auto dot = name.rfind('.');
      remove = writer_only || (name.starts_with(".") && !process_alive(std::string_view(name).substr(dot + 1)));
    }
    if (remove) {
      auto info = st.stat(name);
      if (info && info->regular()) st.remove(name);
    }
  }
}

std::shared_ptr<Block> BlobWriter::make_block(const std::function<uint64_t(WritableFile&)>& fill) {
  const std::string name = new_block_name();
  Storage& st = store_->storage();
  std::unique_ptr<WritableFile> f = st.create(name);
  uint64_t reserved;
  try {
    reserved = fill(*f);
  } catch (...) {
    st.remove(name);
    throw;
  }
  auto blk = store_->block(name);
  fresh_.insert(blk.get());
  dirty_.insert(blk.get());
  reserved_[blk.get()] = reserved;
  files_[blk.get()] = std::move(f);
  return blk;
}

std::shared_ptr<Block> BlobWriter::add_block() {
  auto blk = make_block([&](WritableFile& f) {
    // Full size from the start (src/store/FORMATS.md 3.5), sparse until written.
    f.resize(static_cast<uint64_t>(draft_.conf.block_bytes));
    return uint64_t{0};
  });
  draft_.blocks.push_back(blk);
  return blk;
}

std::shared_ptr<Block> BlobWriter::copy_block(size_t b) {
  const int64_t B = draft_.conf.block_size, item = draft_.conf.item_bytes;
  const int64_t rows = std::clamp<int64_t>(draft_.len - static_cast<int64_t>(b) * B, 0, B);
  std::shared_ptr<ReadableFile> src = store_->file(draft_, b);
  return make_block([&](WritableFile& f) {
    f.copy_from(*src, static_cast<uint64_t>(rows * item));
    f.resize(static_cast<uint64_t>(draft_.conf.block_bytes));
    return static_cast<uint64_t>(rows * item);  // the copy allocated what it wrote
  });
}

WritableFile& BlobWriter::writable(const Block& block) {
  auto& f = files_[&block];
  if (!f) f = store_->storage().open_writable(block.name());
  return *f;
}

void BlobWriter::reserve(const Block& block, uint64_t end) {
  auto it = reserved_.find(&block);
  // A block of the last commit: what its commits used is allocated already.
  uint64_t done = it != reserved_.end() ? it->second
                                        : static_cast<uint64_t>(block.committed_rows() * draft_.conf.item_bytes);
  if (end <= done) {
    reserved_[&block] = done;
    return;
  }
  const uint64_t block_bytes = static_cast<uint64_t>(draft_.conf.block_bytes);
  const uint64_t to = std::min(block_bytes, (end + kReserveStep - 1) / kReserveStep * kReserveStep);
  writable(block).reserve(done, to - done);
  reserved_[&block] = to;
}

void BlobWriter::drop_fresh(const std::shared_ptr<Block>& block) {
  fresh_.erase(block.get());
  dirty_.erase(block.get());
  files_.erase(block.get());
  reserved_.erase(block.get());
  block->doom();  // no commit lists it: its file goes with the last reference
}

void BlobWriter::write(int64_t pos, const std::byte* data, int64_t n) {
  const int64_t B = draft_.conf.block_size, item = draft_.conf.item_bytes;
  checked_mul(pos + n, item, "write position");
  if (n <= 0) return;
  if (pos < 0 || pos > draft_.len)
    throw Error(Errc::kOutOfRange, store_->path() + ": write at tensor " + std::to_string(pos) +
                                       " past the end of a blob of " + std::to_string(draft_.len));
  const int64_t first = pos / B, last = (pos + n - 1) / B;

  // Everything this write changes in the draft's block list, to undo it if
  // the write fails: blocks copied (their previous versions) and added.
  struct Undo {
    size_t index;
    std::shared_ptr<Block> previous;
  };
  std::vector<Undo> copied;
  const size_t blocks_before = draft_.blocks.size();
  auto undo = [&] {
    for (auto it = copied.rbegin(); it != copied.rend(); ++it) {
      std::shared_ptr<Block> made = draft_.blocks[it->index];
      draft_.blocks[it->index] = it->previous;
      drop_fresh(made);
    }
    while (draft_.blocks.size() > blocks_before) {
      std::shared_ptr<Block> made = draft_.blocks.back();
      draft_.blocks.pop_back();
      drop_fresh(made);
    }
  };

  try {
    for (int64_t b = first; b <= last; ++b) {
      const size_t k = static_cast<size_t>(b);
      if (k == draft_.blocks.size()) {
        add_block();
      } else if (!fresh_.count(draft_.blocks[k].get())) {
        const int64_t lo = b == first ? pos % B : 0;
        if (lo < draft_.blocks[k]->committed_rows()) {  // a commit shows these rows: copy first
          std::shared_ptr<Block> previous = draft_.blocks[k];
          std::shared_ptr<Block> made = copy_block(k);
          copied.push_back({k, previous});
          draft_.blocks[k] = made;
        }
      }
      const int64_t hi = b == last ? (pos + n - 1) % B + 1 : B;
      reserve(*draft_.blocks[k], static_cast<uint64_t>(hi * item));
    }

    struct Piece {
      WritableFile* file;
      uint64_t offset, bytes;  // within the block file
      const std::byte* src;
    };
    const bool share = helper_thread_ && first != last && static_cast<uint64_t>(n * item) >= kSharedWriteBytes;
    const int64_t cut = share ? kWritePieceBytes : draft_.conf.block_bytes;
    std::vector<Piece> pieces;
    const int64_t begin = pos * item, end = (pos + n) * item;  // bytes over the whole blob
    for (int64_t at = begin; at < end;) {
      const int64_t b = at / draft_.conf.block_bytes, offset = at % draft_.conf.block_bytes;
      const int64_t stop = std::min({(offset / cut + 1) * cut, draft_.conf.block_bytes, offset + (end - at)});
      pieces.push_back({&writable(*draft_.blocks[static_cast<size_t>(b)]), static_cast<uint64_t>(offset),
                        static_cast<uint64_t>(stop - offset), data + (at - begin)});
      at += stop - offset;
    }
    run_shared(
        pieces.size(), share,
        [&](size_t j, int) {
          const Piece& p = pieces[j];
          p.file->write(p.offset, p.src, static_cast<size_t>(p.bytes));
        },
        1);
  } catch (...) {
    undo();
    throw;
  }
  for (auto& c : copied) replaced_.push_back(std::move(c.previous));
  for (int64_t b = first; b <= last; ++b) dirty_.insert(draft_.blocks[static_cast<size_t>(b)].get());
  draft_.len = std::max(draft_.len, pos + n);
  changed_ = true;
}

void BlobWriter::truncate(int64_t n) {
  if (n < 0 || n > draft_.len)
    throw Error(Errc::kOutOfRange, store_->path() + ": cannot truncate a blob of " + std::to_string(draft_.len) +
                                       " tensors to " + std::to_string(n));
  const size_t keep = static_cast<size_t>(ceil_div(n, draft_.conf.block_size));
  while (draft_.blocks.size() > keep) {
    std::shared_ptr<Block> blk = draft_.blocks.back();
    draft_.blocks.pop_back();
    if (fresh_.count(blk.get())) {
      drop_fresh(blk);
    } else {
      dirty_.erase(blk.get());
      files_.erase(blk.get());
      reserved_.erase(blk.get());
      replaced_.push_back(std::move(blk));
    }
  }
  draft_.len = n;
  // A cut inside a block some commit showed past the cut: the rows beyond it
  // would next be written where they stand, under any reader (another
  // process, a frozen mount) still holding that commit. The kept rows go to
  // a copy, so past the listed length a block is nobody's.
  const int64_t B = draft_.conf.block_size;
  if (n % B != 0) {
    const size_t k = keep - 1;
    const std::shared_ptr<Block> previous = draft_.blocks[k];
    if (!fresh_.count(previous.get()) && previous->committed_rows() > n % B) {
      draft_.blocks[k] = copy_block(k);
      dirty_.erase(previous.get());
      files_.erase(previous.get());
      reserved_.erase(previous.get());
      replaced_.push_back(previous);
    }
  }
  changed_ = true;
}

void BlobWriter::append_block_copy(const ReadableFile& src) {
  const int64_t B = draft_.conf.block_size;
  if (draft_.len % B != 0) throw Error(Errc::kInvalidArgument, store_->path() + ": a block copy needs a block-aligned end");
  truncate(draft_.len);  // drops listed spares past the end
  draft_.blocks.push_back(make_block([&](WritableFile& f) {
    f.copy_from(src, static_cast<uint64_t>(draft_.conf.block_bytes));
    return static_cast<uint64_t>(draft_.conf.block_bytes);
  }));
  draft_.len += B;
  changed_ = true;
}

std::shared_ptr<const BlobSnapshot> BlobWriter::commit() {
  if (!changed_) return base_;
  Storage& st = store_->storage();
  // Block data first, then the status that points at it (src/store/FORMATS.md 3.9).
  for (const Block* b : dirty_) writable(*b).sync();
  BlobStatus status;
  status.len = draft_.len;
  for (const auto& b : draft_.blocks) status.blocks.push_back(b->name());
  const std::string text = format_blob_status(status);
  try {
    st.publish(kStatName, text);
  } catch (...) {
    // The rename is the commit: if only the directory sync after it failed,
    // the new .stat is what readers see; the commit is finished (its blocks
    // kept, its rows marked committed) before the error is reported.
    std::optional<std::string> now;
    try {
      now = st.read_small(kStatName);
    } catch (...) {
    }
    if (!now) {
      // Unknown whether it landed: keep the new blocks (a later writer's
      // sweep removes them if no commit lists them).
      fresh_.clear();
      throw;
    }
    if (*now != text) throw;
    finish_commit(text);
    throw;
  }
  return finish_commit(text);
}

std::shared_ptr<const BlobSnapshot> BlobWriter::finish_commit(const std::string& text) {
  Storage& st = store_->storage();
  // From here the draft is the last commit.
  fresh_.clear();
  dirty_.clear();
  changed_ = false;
  std::vector<std::shared_ptr<Block>> replaced = std::move(replaced_);
  replaced_.clear();
  for (const auto& b : replaced) b->doom();  // removed once no snapshot here holds it
  replaced.clear();
  // Per-tensor hashes of the old contents would accuse the new ones.
  try {
    st.remove(kBlobHashesName);
  } catch (const Error&) {
  }
  const int64_t B = draft_.conf.block_size;
  for (size_t k = 0; k < draft_.blocks.size(); ++k)
    draft_.blocks[k]->note_committed_rows(std::clamp<int64_t>(draft_.len - static_cast<int64_t>(k) * B, 0, B));
  // Keep only the last block's descriptor: the next appends go there.
  const Block* last = draft_.blocks.empty() ? nullptr : draft_.blocks.back().get();
  for (auto it = files_.begin(); it != files_.end();) it = it->first == last ? std::next(it) : files_.erase(it);
  for (auto it = reserved_.begin(); it != reserved_.end();) it = it->first == last ? std::next(it) : reserved_.erase(it);
  base_ = store_->make_snapshot(draft_, text);
  store_->publish(base_);
  return base_;
}

void BlobWriter::discard() {
  for (const auto& b : draft_.blocks)
    if (fresh_.count(b.get())) b->doom();
  fresh_.clear();
  dirty_.clear();
  replaced_.clear();
  files_.clear();
  reserved_.clear();
  draft_ = base_->state();
  changed_ = false;
}

}  // namespace tensorblob
