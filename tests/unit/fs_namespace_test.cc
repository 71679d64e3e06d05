#include "namespace.h"
#include "node_table.h"

#include <catch2/catch.hpp>
#include <set>

using namespace blobfs;

TEST_CASE("canonical names map to nodes and back") {
  Namespace ns(1000, 6, true, true);
  CHECK(ns.lookup("meta.yaml") == Node{NodeKind::kMeta});
  CHECK(ns.lookup("all.bin") == Node{NodeKind::kAllBin, 0, 1000});
  CHECK(ns.lookup("all.npy") == Node{NodeKind::kAllNpy, 0, 1000});
  CHECK(ns.lookup("000123.bin") == Node{NodeKind::kItemBin, 123, 124});
  CHECK(ns.lookup("000999.npy") == Node{NodeKind::kItemNpy, 999, 1000});
  CHECK(ns.lookup("000010-000020.bin") == Node{NodeKind::kRangeBin, 10, 20});
  CHECK(ns.lookup("000000-001000.npy") == Node{NodeKind::kRangeNpy, 0, 1000});
  CHECK(ns.lookup("000005-000005.bin") == Node{NodeKind::kRangeBin, 5, 5});
  for (const char* n : {"000123.bin", "000123.npy", "000010-000020.bin", "000010-000020.npy", "meta.yaml", "all.bin"})
    CHECK(ns.name(*ns.lookup(n)) == n);
}

TEST_CASE("only the canonical spelling of a name exists") {
  Namespace ns(1000, 6, true, true);
  for (const char* n : {"123.bin", "0000123.bin", "+00123.bin", "-1.bin", "000123.BIN", "000123.bin ", " 000123.bin",
                        "000123", "000123.", ".bin", "001000.bin", "00012a.bin", "000020-000010.bin",
                        "000010-001001.bin", "10-20.bin", "000010-20.bin", "000010--000020.bin", "000010-000020-000030.bin",
                        "ALL.bin", "meta.yml", "", ".", "..", "99999999999999999999.bin", "000010-.bin", "-000010.bin"}) {
    INFO("'" << n << "'");
    CHECK(!ns.lookup(n));
  }
}

TEST_CASE("indices wider than the naming width are written in full") {
  Namespace ns(2'000'000, 6, true, true);
  CHECK(ns.lookup("1000000.bin") == Node{NodeKind::kItemBin, 1'000'000, 1'000'001});
  CHECK(!ns.lookup("01000000.bin"));
  CHECK(ns.name(Node{NodeKind::kItemBin, 1'999'999, 2'000'000}) == "1999999.bin");
  Namespace w2(500, 2, true, true);
  CHECK(w2.lookup("07.bin"));
  CHECK(w2.lookup("123.bin"));
  CHECK(!w2.lookup("007.bin"));
}

TEST_CASE("views turned off or impossible are not found") {
  Namespace no_npy(10, 6, false, true);
  CHECK(!no_npy.lookup("all.npy"));
  CHECK(!no_npy.lookup("000001.npy"));
  CHECK(!no_npy.lookup("000001-000002.npy"));
  CHECK(no_npy.lookup("000001-000002.bin"));
  Namespace no_ranges(10, 6, true, false);
  CHECK(!no_ranges.lookup("000001-000002.bin"));
  CHECK(no_ranges.lookup("000001.npy"));
  CHECK(!no_npy.from_ino(*Namespace::fixed_ino(Node{NodeKind::kItemNpy, 1, 2})));
  CHECK(!no_ranges.from_ino(*Namespace::fixed_ino(Node{NodeKind::kRangeBin, 1, 2})));
}

TEST_CASE("inode numbers are distinct, stable and decode to their node") {
  Namespace ns(100, 6, true, true);
  std::set<uint64_t> seen;
  std::vector<Node> nodes = {{NodeKind::kRoot}, {NodeKind::kMeta}, {NodeKind::kAllBin, 0, 100}, {NodeKind::kAllNpy, 0, 100}};
  for (int64_t i = 0; i < 100; ++i) {
    nodes.push_back({NodeKind::kItemBin, i, i + 1});
    nodes.push_back({NodeKind::kItemNpy, i, i + 1});
    nodes.push_back({NodeKind::kRangeBin, i, 100});
    nodes.push_back({NodeKind::kRangeNpy, 0, i});
  }
  for (const auto& n : nodes) {
    uint64_t ino = *Namespace::fixed_ino(n);
    CHECK(seen.insert(ino).second);
    CHECK(ns.from_ino(ino) == n);
  }
  CHECK(*Namespace::fixed_ino(Node{NodeKind::kRoot}) == 1);
  CHECK(!ns.from_ino(0));
  CHECK(!ns.from_ino(5));
  CHECK(!ns.from_ino(*Namespace::fixed_ino(Node{NodeKind::kItemBin, 100, 101})));
  CHECK(!ns.from_ino(*Namespace::fixed_ino(Node{NodeKind::kRangeBin, 5, 101})));
}

TEST_CASE("readdir lists meta.yaml, all.bin, all.npy, then every tensor in order") {
  Namespace ns(3, 6, true, true);
  REQUIRE(ns.listed_count() == 6);
  std::vector<std::string> names;
  for (uint64_t k = 0; k < ns.listed_count(); ++k) names.push_back(ns.name(ns.listed(k)));
  CHECK(names == std::vector<std::string>{"meta.yaml", "all.bin", "all.npy", "000000.bin", "000001.bin", "000002.bin"});
  Namespace no_npy(2, 6, false, true);
  CHECK(no_npy.listed_count() == 4);
  CHECK(no_npy.name(no_npy.listed(2)) == "000000.bin");
}

TEST_CASE("ten million tensors need no memory: the last one is pure arithmetic") {
  Namespace ns(10'000'000, 6, true, true);
  Node last = ns.listed(ns.listed_count() - 1);
  CHECK(ns.name(last) == "9999999.bin");
  CHECK(ns.lookup("9999999.bin") == last);
  CHECK(ns.from_ino(*Namespace::fixed_ino(last)) == last);
}

TEST_CASE("ranges past 2^31 are found by name and numbered by the node table, not by arithmetic") {
  const int64_t big = int64_t{1} << 40;
  Namespace ns(big, 6, true, true);
  auto r = ns.lookup("3000000000-3000000005.bin");
  REQUIRE(r);
  CHECK(*r == Node{NodeKind::kRangeBin, 3'000'000'000, 3'000'000'005});
  CHECK(!Namespace::fixed_ino(*r));  // a NodeTable numbers it
  CHECK(ns.lookup("000000-" + std::to_string(big) + ".npy"));
  CHECK(!ns.lookup("000000-" + std::to_string(big + 1) + ".bin"));
  // The largest item's numbers stay below the dynamic space and the range bit.
  const int64_t last = tensorblob::kMaxMountedCount - 1;
  Namespace huge(tensorblob::kMaxMountedCount, 6, true, true);
  const uint64_t ino = *Namespace::fixed_ino(Node{NodeKind::kItemNpy, last, last + 1});
  CHECK(ino < Namespace::kDynamicBase);
  CHECK(huge.from_ino(ino) == Node{NodeKind::kItemNpy, last, last + 1});
  CHECK(!huge.from_ino(Namespace::kDynamicBase));
  CHECK(Namespace::is_dynamic_ino(Namespace::kDynamicBase));
  CHECK(!Namespace::is_dynamic_ino(uint64_t{1} << 63));  // encoded ranges
}

TEST_CASE("the node table hands one number per node while the kernel holds it") {
  NodeTable t;
  Node a{NodeKind::kRangeBin, 1, int64_t{1} << 33}, b{NodeKind::kRangeNpy, 1, int64_t{1} << 33};
  uint64_t ia = t.acquire(a, 0), ib = t.acquire(b, 0);
  CHECK(ia != ib);
  CHECK(Namespace::is_dynamic_ino(ia));
  CHECK(t.acquire(a, 0) == ia);  // two lookups
  CHECK(t.find(ia) == a);
  t.forget(ia, 1);
  CHECK(t.find(ia) == a);
  t.forget(ia, 1);
  CHECK(!t.find(ia));
  CHECK(t.acquire(a, 0) != ia);  // numbers are never reused
  CHECK(t.size() == 2);
  CHECK(t.take_late().empty());
}

TEST_CASE("a dynamic number looked up from a replaced view is set aside as late") {
  NodeTable t;
  Node a{NodeKind::kRangeBin, 1, int64_t{1} << 33};
  t.set_generation(2);
  const uint64_t ia = t.acquire(a, 1);  // answered from view 1, after view 2 took over
  const std::vector<uint64_t> late = t.take_late();
  REQUIRE(late.size() == 1);
  CHECK(late[0] == ia);
  t.acquire(a, 2);
  CHECK(t.take_late().empty());
}
