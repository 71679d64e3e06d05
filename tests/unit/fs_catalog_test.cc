// A data directory as the mount sees it, without FUSE: what a directory
// lists, what each name is, how CatalogFs numbers, counts and closes, and a
// TensorDB field counted to the DB's committed rows.
#include "catalog_fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tensorblob/catalog.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"
#include "test_util.h"

using namespace blobfs;
using testutil::TempDir;
using tensorblob::StoreKind;
namespace stdfs = std::filesystem;

namespace {

void make_blob(const std::string& path, int64_t n) {
  tensorblob::OpenOptions o;
  o.dtype = "float32";
  o.shape = tensorblob::Shape{2};
  o.block_size = 3;
  tensorblob::Blob b = tensorblob::Blob::open(path, "w", o);
  tensorblob::Tensor data(tensorblob::DType::kFloat32, {n, 2});
  for (int64_t i = 0; i < 2 * n; ++i) data.values<float>()[i] = static_cast<float>(i);
  b.write(data);
}

const std::string kDbFixture = "tests/conformance/tensorblob/db_two_fields";

}  // namespace

TEST_CASE("a catalog directory lists directories and ragged bases, and skips links and bad names") {
  TempDir t;
  stdfs::create_directories(t / "plain/sub");
  make_blob(t / "blob", 2);
  testutil::write_file(t / "tokens.dat", "");
  testutil::write_file(t / "tokens.json", "{}");
  testutil::write_file(t / "lonely.json", "{}");      // no .dat: not a dataset
  testutil::write_file(t / "README.txt", "junk");
  stdfs::create_directory(t / "both");                // a directory shadows the ragged base
  testutil::write_file(t / "both.dat", "");
  testutil::write_file(t / "both.json", "{}");
  ::symlink("blob", (t / "link").c_str());
  testutil::write_file(t / "bad\nname.json", "");
  testutil::write_file(t / "bad\nname.dat", "");

  const tensorblob::CatalogListing l = tensorblob::list_catalog_dir(t.path(), "root/");
  CHECK(l.names == std::vector<std::string>{"blob", "both", "plain", "tokens"});
  auto skipped = [&](const std::string& what) {
    return std::any_of(l.skipped.begin(), l.skipped.end(), [&](const auto& s) { return s.find(what) != s.npos; });
  };
  CHECK(skipped("root/link: a symbolic link, not followed"));
  CHECK(skipped("root/both: a ragged dataset shadowed"));
  CHECK(skipped("control character"));

  CHECK(tensorblob::catalog_kind(t.path(), "blob") == StoreKind::kBlob);
  CHECK(tensorblob::catalog_kind(t.path(), "plain") == StoreKind::kDirectory);
  CHECK(tensorblob::catalog_kind(t.path(), "tokens") == StoreKind::kRagged);
  CHECK(tensorblob::catalog_kind(t.path(), "link") == StoreKind::kNone);
  CHECK(tensorblob::catalog_kind(t.path(), "README.txt") == StoreKind::kNone);
  CHECK(tensorblob::catalog_kind(t.path(), "lonely") == StoreKind::kNone);
  CHECK(tensorblob::catalog_kind(t.path(), "..") == StoreKind::kNone);
  CHECK(tensorblob::catalog_kind(t.path(), "plain/sub") == StoreKind::kNone);
  CHECK(tensorblob::catalog_kind(t.path(), "missing") == StoreKind::kNone);
  CHECK_THROWS_AS(tensorblob::list_catalog_dir(t / "missing"), tensorblob::Error);
}

TEST_CASE("names a catalog shows are one component with no control character") {
  CHECK(tensorblob::is_showable_name("emb-v1.2"));
  CHECK(tensorblob::is_showable_name("with space"));
  CHECK_FALSE(tensorblob::is_showable_name(""));
  CHECK_FALSE(tensorblob::is_showable_name("."));
  CHECK_FALSE(tensorblob::is_showable_name(".."));
  CHECK_FALSE(tensorblob::is_showable_name("a/b"));
  CHECK_FALSE(tensorblob::is_showable_name("a\nb"));
  CHECK_FALSE(tensorblob::is_showable_name("a\x7f"));
  CHECK_FALSE(tensorblob::is_showable_name(std::string(256, 'x')));
}

TEST_CASE("a TensorDB field as a store stops at the DB's rows and follows them") {
  TempDir t;
  stdfs::copy(kDbFixture, t / "db", stdfs::copy_options::recursive);
  auto store = tensorblob::open_tensordb_field(t / "db", "price");
  CHECK(store->snapshot()->count() == 5);
  CHECK(store->snapshot()->facts().count == 5);
  CHECK(store->snapshot()->facts().total_bytes == 20);

  // The field grows on its own (a crash before the DB's commit): still 5.
  tensorblob::Tensor one(tensorblob::DType::kFloat32, {1, 1});
  {
    tensorblob::Blob b = tensorblob::Blob::open(t / "db/price", "a");
    b.write(one);
  }
  store->refresh();
  CHECK(store->snapshot()->count() == 5);

  // The DB's commit of fewer rows is followed, and what changed is said.
  {
    tensorblob::TensorDB db = tensorblob::TensorDB::open(t / "db", "r+");
    db.truncate(3);
  }
  auto change = store->refresh();
  REQUIRE(change);
  CHECK(change->before->count() == 5);
  CHECK(change->after->count() == 3);
  CHECK(store->snapshot()->item_offset(3) == 12);

  CHECK_THROWS_AS(tensorblob::open_tensordb_field(t / "db", "nope"), tensorblob::Error);
  CHECK_THROWS_AS(tensorblob::open_tensordb_field(t / "missing", "price"), tensorblob::Error);
}

TEST_CASE("CatalogFs numbers what the kernel holds, opens stores lazily and closes them when forgotten") {
  TempDir t;
  stdfs::create_directories(t / "root/sub");
  make_blob(t / "root/sub/a", 4);
  stdfs::create_directories(t / "root/broken");
  testutil::write_file(t / "root/broken/.conf", "{");
  testutil::write_file(t / "root/broken/.stat", "{}");
  Options o;
  o.live = false;
  CatalogFs cat(t / "root", o, {});

  auto root = cat.resolve(1);
  REQUIRE(root);
  auto names = cat.list(*root->node, true);
  REQUIRE(names.size() == 3);
  CHECK(names[0] == std::make_pair(std::string("index.yaml"), false));
  CHECK(names[1] == std::make_pair(std::string("broken"), true));
  CHECK(names[2] == std::make_pair(std::string("sub"), true));
  CHECK_FALSE(cat.lookup(*root->node, "nothing"));
  CHECK_FALSE(cat.lookup(*root->node, ".."));

  auto sub = cat.lookup(*root->node, "sub");
  REQUIRE(sub);
  CHECK(S_ISDIR(sub->attr.st_mode));
  CHECK(cat.lookup(*root->node, "sub")->ino == sub->ino);  // the same directory, counted twice
  auto sub_node = cat.resolve(sub->ino);
  auto a = cat.lookup(*sub_node->node, "a");
  REQUIRE(a);
  CHECK(cat.stores_open() == 0);  // looked up, not opened

  auto a_node = cat.resolve(a->ino);
  REQUIRE(a_node->node->kind == CatalogFs::Kind::kStoreDir);
  std::shared_ptr<OpenStore> store = cat.open(*a_node->node);
  REQUIRE(store);
  CHECK(cat.stores_open() == 1);
  CHECK(store->fs().view()->dataset().count() == 4);

  // A file of the store: one number, counted per hand-out, both ways.
  const uint64_t k = store->hand_out(2);  // the store's meta.yaml
  CHECK(store->hand_out(2) == k);
  CHECK(store->hand_out(1) == a->ino);  // the store's root is its directory
  auto file = cat.resolve(k);
  REQUIRE(file);
  CHECK(file->store == store);
  CHECK(file->local == 2);
  Invalidation plan;
  plan.inodes.push_back({2, 0, 0});
  plan.inodes.push_back({99, 0, 0});  // a file the kernel never got: left out
  plan.entries.push_back({1, "000003.bin"});
  const Invalidation in_kernel = store->to_kernel(plan);
  REQUIRE(in_kernel.inodes.size() == 1);
  CHECK(in_kernel.inodes[0].ino == k);
  REQUIRE(in_kernel.entries.size() == 1);
  CHECK(in_kernel.entries[0].parent == a->ino);
  cat.forget(k, 1);
  CHECK(cat.resolve(k));
  cat.forget(k, 1);
  CHECK_FALSE(cat.resolve(k));

  // The kernel forgets the directory: the store is no longer open.
  cat.forget(a->ino, 1);
  CHECK_FALSE(cat.resolve(a->ino));
  CHECK(cat.stores_open() == 0);
  store.reset();

  // A damaged store: no store, an error, and a meta.yaml saying it.
  auto broken = cat.lookup(*root->node, "broken");
  auto broken_node = cat.resolve(broken->ino);
  CHECK_FALSE(cat.open(*broken_node->node));
  CHECK(broken_node->node->error.find("invalid JSON") != std::string::npos);
  auto meta = cat.lookup(*broken_node->node, "meta.yaml");
  REQUIRE(meta);
  auto text = cat.resolve(meta->ino);
  CHECK(text->node->text->find("format: damaged") != std::string::npos);
  CHECK(meta->attr.st_size == static_cast<off_t>(text->node->text->size()));
  CHECK_FALSE(cat.lookup(*broken_node->node, "000000.bin"));
}

TEST_CASE("a catalog's text files keep their bytes: new text is a new number") {
  TempDir t;
  stdfs::create_directories(t / "root");
  make_blob(t / "root/a", 2);
  Options o;
  o.live = true;
  o.refresh_interval = 0;  // every lookup looks again
  CatalogFs cat(t / "root", o, {});
  auto root = cat.resolve(1);
  auto first = cat.lookup(*root->node, "index.yaml");
  REQUIRE(first);
  auto again = cat.lookup(*root->node, "index.yaml");
  CHECK(again->ino == first->ino);  // the same text, the same file
  make_blob(t / "root/b", 3);
  auto changed = cat.lookup(*root->node, "index.yaml");
  CHECK(changed->ino != first->ino);
  auto old_text = cat.resolve(first->ino);
  REQUIRE(old_text);  // still held by the kernel: its bytes stay
  CHECK(old_text->node->text->find("  b:") == std::string::npos);
  CHECK(cat.resolve(changed->ino)->node->text->find("  b:") != std::string::npos);
}

TEST_CASE("a TensorDB as a catalog directory: meta.yaml and its fields") {
  TempDir t;
  stdfs::create_directories(t / "root");
  stdfs::copy(kDbFixture, t / "root/table", stdfs::copy_options::recursive);
  Options o;
  o.live = false;
  CatalogFs cat(t / "root", o, {});
  auto root = cat.resolve(1);
  auto table = cat.lookup(*root->node, "table");
  REQUIRE(table);
  auto table_node = cat.resolve(table->ino);
  CHECK(table_node->node->kind == CatalogFs::Kind::kDbDir);
  auto names = cat.list(*table_node->node, true);
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "meta.yaml");
  CHECK(names[1].first == "embed");
  CHECK(names[2].first == "price");
  auto meta = cat.lookup(*table_node->node, "meta.yaml");
  CHECK(cat.resolve(meta->ino)->node->text->find("rows: 5") != std::string::npos);
  auto price = cat.lookup(*table_node->node, "price");
  auto store = cat.open(*cat.resolve(price->ino)->node);
  REQUIRE(store);
  CHECK(store->fs().view()->dataset().count() == 5);
  CHECK_FALSE(cat.lookup(*table_node->node, "missing_field"));

  // The root itself a TensorDB; a damaged one is refused before mounting.
  CatalogFs db(t / "root/table", o, {});
  CHECK(db.resolve(1)->node->kind == CatalogFs::Kind::kDbDir);
  testutil::write_file(t / "root/table/.stat", "{\"len\":");
  CHECK_THROWS_AS(CatalogFs(t / "root/table", o, {}), tensorblob::Error);
  CHECK_THROWS_AS(CatalogFs(t / "nothing", o, {}), tensorblob::Error);
}
