#include "namespace.h"

namespace blobfs {

namespace {

// Inode layout: 1 root (FUSE_ROOT_ID), 2-4 the fixed files, items from 16 on
// (two per tensor: .bin then .npy), ranges with the top bit set.
constexpr uint64_t kRootIno = 1, kMetaIno = 2, kAllBinIno = 3, kAllNpyIno = 4, kItemBase = 16;
constexpr uint64_t kRangeBit = uint64_t{1} << 63, kRangeNpyBit = uint64_t{1} << 62;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool is_npy(NodeKind kind) {
  return kind == NodeKind::kAllNpy || kind == NodeKind::kItemNpy || kind == NodeKind::kRangeNpy;
}

Namespace::Namespace(int64_t count, int width, bool npy, bool ranges)
    : count_(count), width_(width), npy_(npy), ranges_(ranges) {}

std::string Namespace::index_name(int64_t i) const { return tensorblob::index_name(i, width_); }

// Only the canonical spelling of an index exists: digits only, and exactly
// what index_name prints (so "123", "0000123" and "+00123" are not names).
std::optional<int64_t> Namespace::parse_index(std::string_view digits) const {
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return std::nullopt;
  }
  if (index_name(v) != digits) return std::nullopt;
  return v;
}

std::optional<Node> Namespace::lookup(std::string_view name) const {
  if (name == "meta.yaml") return Node{NodeKind::kMeta};
  if (name == "all.bin") return Node{NodeKind::kAllBin, 0, count_};
  if (name == "all.npy") return npy_ ? std::optional<Node>(Node{NodeKind::kAllNpy, 0, count_}) : std::nullopt;
  bool npy;
  if (ends_with(name, ".bin")) npy = false;
  else if (ends_with(name, ".npy")) npy = true;
  else return std::nullopt;
  if (npy && !npy_) return std::nullopt;
  std::string_view stem = name.substr(0, name.size() - 4);
  size_t dash = stem.find('-');
  if (dash == std::string_view::npos) {
    auto i = parse_index(stem);
    if (!i || *i >= count_) return std::nullopt;
    return Node{npy ? NodeKind::kItemNpy : NodeKind::kItemBin, *i, *i + 1};
  }
  if (!ranges_) return std::nullopt;
  auto a = parse_index(stem.substr(0, dash)), b = parse_index(stem.substr(dash + 1));
  if (!a || !b || *a > *b || *b > count_) return std::nullopt;
  return Node{npy ? NodeKind::kRangeNpy : NodeKind::kRangeBin, *a, *b};
}

bool Namespace::contains(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kRoot:
    case NodeKind::kMeta:
    case NodeKind::kAllBin:
      return true;
    case NodeKind::kAllNpy:
      return npy_;
    case NodeKind::kItemBin:
    case NodeKind::kItemNpy:
      return n.first >= 0 && n.first < count_ && (n.kind == NodeKind::kItemBin || npy_);
    case NodeKind::kRangeBin:
    case NodeKind::kRangeNpy:
      return ranges_ && n.first >= 0 && n.first <= n.last && n.last <= count_ && (n.kind == NodeKind::kRangeBin || npy_);
  }
  return false;
}

std::optional<uint64_t> Namespace::fixed_ino(const Node& n) {
  switch (n.kind) {
    case NodeKind::kRoot: return kRootIno;
    case NodeKind::kMeta: return kMetaIno;
    case NodeKind::kAllBin: return kAllBinIno;
    case NodeKind::kAllNpy: return kAllNpyIno;
    case NodeKind::kItemBin: return kItemBase + 2 * static_cast<uint64_t>(n.first);
    case NodeKind::kItemNpy: return kItemBase + 2 * static_cast<uint64_t>(n.first) + 1;
    case NodeKind::kRangeBin:
    case NodeKind::kRangeNpy:
      if (n.first > kMaxRangeBound || n.last > kMaxRangeBound) return std::nullopt;
      return kRangeBit | (n.kind == NodeKind::kRangeNpy ? kRangeNpyBit : 0) |
             (static_cast<uint64_t>(n.first) << 31) | static_cast<uint64_t>(n.last);
  }
  return std::nullopt;
}

std::optional<Node> Namespace::from_ino(uint64_t ino) const {
  std::optional<Node> n;
  if (ino & kRangeBit) {
    bool npy = ino & kRangeNpyBit;
    int64_t a = static_cast<int64_t>((ino >> 31) & kMaxRangeBound), b = static_cast<int64_t>(ino & kMaxRangeBound);
    if (!ranges_ || a > b || b > count_ || (npy && !npy_)) return std::nullopt;
    return Node{npy ? NodeKind::kRangeNpy : NodeKind::kRangeBin, a, b};
  }
  switch (ino) {
    case kRootIno: return Node{NodeKind::kRoot};
    case kMetaIno: return Node{NodeKind::kMeta};
    case kAllBinIno: return Node{NodeKind::kAllBin, 0, count_};
    case kAllNpyIno: return npy_ ? std::optional<Node>(Node{NodeKind::kAllNpy, 0, count_}) : std::nullopt;
    default: break;
  }
  if (ino < kItemBase || is_dynamic_ino(ino)) return std::nullopt;
  uint64_t i = (ino - kItemBase) / 2;
  bool npy = (ino - kItemBase) % 2;
  if (i >= static_cast<uint64_t>(count_) || (npy && !npy_)) return std::nullopt;
  return Node{npy ? NodeKind::kItemNpy : NodeKind::kItemBin, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1};
}

std::string Namespace::name(const Node& n) const {
  switch (n.kind) {
    case NodeKind::kRoot: return "";
    case NodeKind::kMeta: return "meta.yaml";
    case NodeKind::kAllBin: return "all.bin";
    case NodeKind::kAllNpy: return "all.npy";
    case NodeKind::kItemBin: return index_name(n.first) + ".bin";
    case NodeKind::kItemNpy: return index_name(n.first) + ".npy";
    case NodeKind::kRangeBin: return index_name(n.first) + "-" + index_name(n.last) + ".bin";
    case NodeKind::kRangeNpy: return index_name(n.first) + "-" + index_name(n.last) + ".npy";
  }
  return "";
}

uint64_t Namespace::listed_count() const { return (npy_ ? 3 : 2) + static_cast<uint64_t>(count_); }

Node Namespace::listed(uint64_t k) const {
  if (k == 0) return Node{NodeKind::kMeta};
  if (k == 1) return Node{NodeKind::kAllBin, 0, count_};
  if (npy_ && k == 2) return Node{NodeKind::kAllNpy, 0, count_};
  int64_t i = static_cast<int64_t>(k - (npy_ ? 3 : 2));
  return Node{NodeKind::kItemBin, i, i + 1};
}

}  // namespace blobfs
