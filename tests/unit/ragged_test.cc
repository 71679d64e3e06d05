// Ragged datasets: picomap's formats, hash, build and verify, against the
// datasets picomap itself wrote (tests/conformance/picomap).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "tensorblob/error.h"
#include "tensorblob/hash.h"
#include "tensorblob/npy.h"
#include "tensorblob/ragged.h"
#include "tensorblob/verify.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kDir = "tests/conformance/picomap/";
const std::vector<std::string> kNames = {"f32_ragged", "f16_1d",       "i64_2x3", "u8_img", "single",
                                         "bool_ragged", "f4_bigendian", "dotted",  "tiny_example"};

struct NpyItem {
  NpyHeader header;
  std::string data;
};

NpyItem load_npy(const std::string& path) {
  std::string bytes = testutil::read_file(path);
  NpyItem it{parse_npy_header(bytes, path), ""};
  it.data = bytes.substr(it.header.data_offset);
  return it;
}

std::vector<NpyItem> inputs(const std::string& name) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(kDir + "inputs/" + name)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<NpyItem> out;
  for (const auto& f : files) out.push_back(load_npy(f));
  return out;
}

std::string build(const std::string& base, const std::vector<NpyItem>& items) {
  RaggedBuilder b(base);
  for (size_t i = 0; i < items.size(); ++i)
    b.add(items[i].header.descr, items[i].header.shape, items[i].data.data(), items[i].data.size(),
          "item " + std::to_string(i));
  b.commit();
  return base;
}

// A copy of golden dataset `name` under t, returned by base path.
std::string copy_golden(const TempDir& t, const std::string& name) {
  for (const char* suffix : {".dat", ".starts.npy", ".json"}) {
    fs::copy_file(kDir + name + suffix, t / (name + suffix));
    fs::permissions(t / (name + suffix), fs::perms::owner_write, fs::perm_options::add);
  }
  return t / name;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::string bytes = testutil::read_file(path);
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x40);
  testutil::write_file(path, bytes);
}

}  // namespace

TEST_CASE("the content hash matches picomap's on its tiny example and on the empty dataset") {
  ContentHasher h;
  const float a[] = {1, 2}, b[] = {3, 4, 5, 6};
  h.add_item("<f4", {1, 2}, a, sizeof a);
  h.add_item("<f4", {2, 2}, b, sizeof b);
  CHECK(h.finish() == "44df31c60d366af5eb4e4d2bc22867d8");
  ContentHasher empty;
  CHECK(empty.finish() == "8ca6416b686f3194e54b56dd275610a2");
  CHECK(xxh3_128_hex("D|v1|D|end|", 11) == "8ca6416b686f3194e54b56dd275610a2");
}

TEST_CASE("a dataset is named by its base or any of its files") {
  for (const char* given : {"ds/x", "ds/x.dat", "ds/x.json", "ds/x.starts.npy", "ds/x.hashes.npy"}) {
    RaggedPaths p = ragged_paths(given);
    CHECK(p.base == "ds/x");
    CHECK(p.dat == "ds/x.dat");
    CHECK(p.starts == "ds/x.starts.npy");
    CHECK(p.json == "ds/x.json");
  }
  CHECK(ragged_paths("ds/v1.2").base == "ds/v1.2");
  CHECK(ragged_paths_for_base("ds/v1.2").dat == "ds/v1.2.dat");  // appended as given, unlike picomap
}

TEST_CASE("picomap JSON parses and is written back byte for byte") {
  for (const auto& name : kNames) {
    INFO(name);
    std::string text = testutil::read_file(kDir + name + ".json");
    RaggedMeta m = parse_ragged_json(text, name);
    CHECK(format_ragged_json(m) == text);
  }
  RaggedMeta e = parse_ragged_json(testutil::read_file(kDir + "empty.json"), "empty");
  CHECK(!e.trail);
  CHECK(e.dtype_name == "None");
  CHECK(format_ragged_json(e) == testutil::read_file(kDir + "empty.json"));
}

TEST_CASE("picomap JSON refusals name the file and the key") {
  auto bad = [](const std::string& body) { return parse_ragged_json(body, "/d/x.json"); };
  const std::string ok_hash = "\"44df31c60d366af5eb4e4d2bc22867d8\"";
  auto doc = [&](const std::string& trail, const std::string& hash, const std::string& count, const std::string& rows,
                 const std::string& extra = "") {
    return "{\"trail_dim\":" + trail + ",\"hash\":" + hash + ",\"creation_time\":\"x\",\"dtype\":\"float32\",\"count\":" +
           count + ",\"total_rows\":" + rows + extra + "}";
  };
  CHECK_NOTHROW(bad(doc("[2]", ok_hash, "2", "3")));
  CHECK_THROWS_WITH(bad("{"), Catch::StartsWith("/d/x.json: invalid JSON"));
  CHECK_THROWS_WITH(bad("[]"), Catch::Contains("must be a JSON object"));
  CHECK_THROWS_WITH(bad(doc("[2]", ok_hash, "2", "3", ",\"x\":1")), Catch::Contains("unknown key 'x'"));
  CHECK_THROWS_WITH(bad("{\"hash\":" + ok_hash + "}"), Catch::Contains("missing key 'trail_dim'"));
  CHECK_THROWS_WITH(bad(doc("[2]", "\"XYZ\"", "2", "3")), Catch::Contains("'hash' must be 32 lowercase hex digits"));
  CHECK_THROWS_WITH(bad(doc("[2]", ok_hash, "-1", "3")), Catch::Contains("'count' must be a non-negative integer"));
  CHECK_THROWS_WITH(bad(doc("[2]", ok_hash, "2.5", "3")), Catch::Contains("'count' must be a non-negative integer"));
  CHECK_THROWS_WITH(bad(doc("null", ok_hash, "2", "3")), Catch::Contains("'trail_dim' is null but count is 2"));
  CHECK_THROWS_WITH(bad(doc("[-2]", ok_hash, "2", "3")), Catch::Contains("non-negative integers"));
  CHECK_THROWS_WITH(bad(doc("\"2\"", ok_hash, "2", "3")), Catch::Contains("list of integers or null"));
  CHECK_THROWS_WITH(bad(doc("[2]", ok_hash, "4", "3")), Catch::Contains("count 4 exceeds total_rows 3"));
  CHECK_THROWS_WITH(bad(doc("null", ok_hash, "0", "3")), Catch::Contains("count is 0 but total_rows is 3"));
}

TEST_CASE("creation time is picomap's C-locale spelling in local time") {
  std::string old_tz = std::getenv("TZ") ? std::getenv("TZ") : "";
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  CHECK(picomap_creation_time(1762128300) == "Mon 03 Nov 2025, 12:05AM");  // 00:05 UTC
  CHECK(picomap_creation_time(1762182000) == "Mon 03 Nov 2025, 03:00PM");
  CHECK(picomap_creation_time(1764000000) == "Mon 24 Nov 2025, 04:00PM");
  if (old_tz.empty()) ::unsetenv("TZ");
  else ::setenv("TZ", old_tz.c_str(), 1);
  ::tzset();
}

TEST_CASE("starts files are written as numpy writes them and checked when read") {
  CHECK(format_starts_npy({0, 1, 3}) == testutil::read_file(kDir + "tiny_example.starts.npy"));
  std::string f = format_starts_npy({0, 1, 3});
  StartsLayout l = parse_starts_header(f, f.size(), "s.npy");
  CHECK(l.data_offset == 128);
  CHECK(l.entries == 3);
  CHECK_THROWS_WITH(parse_starts_header(f, f.size() + 1, "s.npy"), Catch::Contains("s.npy: is 153 bytes but its header promises 152"));
  std::string f4 = npy_header("<f4", {3}) + std::string(12, '\0');
  CHECK_THROWS_WITH(parse_starts_header(f4, f4.size(), "s.npy"), Catch::Contains("expected 8-byte little-endian integers"));
  std::string two = npy_header("<u8", {2, 2}) + std::string(32, '\0');
  CHECK_THROWS_WITH(parse_starts_header(two, two.size(), "s.npy"), Catch::Contains("expected a 1-D array"));
}

TEST_CASE("every golden dataset opens and reads back its input items") {
  for (const auto& name : kNames) {
    INFO(name);
    auto ds = open_ragged_dataset(kDir + name);
    auto items = inputs(name);
    REQUIRE(ds->count() == static_cast<int64_t>(items.size()));
    for (int64_t i = 0; i < ds->count(); ++i) {
      CHECK(ds->item_shape(i) == items[i].header.shape);
      uint64_t a = ds->item_offset(i), b = ds->item_offset(i + 1);
      std::string got(b - a, '\0');
      ds->read(a, got.size(), reinterpret_cast<std::byte*>(got.data()));
      CHECK(got == items[i].data);
    }
    CHECK(ds->npy_descr() == items[0].header.descr);
  }
  CHECK(open_ragged_dataset(kDir + "f4_bigendian.json")->dtype_name() == ">f4");
  auto empty = open_ragged_dataset(kDir + "empty.dat");
  CHECK(empty->count() == 0);
  CHECK(empty->npy_descr().empty());
}

TEST_CASE("every golden dataset verifies, the empty one included") {
  for (auto name : kNames) {
    INFO(name);
    VerifyReport r = verify_ragged(kDir + name);
    CHECK(r.ok);
    CHECK(r.computed == r.stored);
  }
  CHECK(verify_ragged(kDir + "empty").computed == "8ca6416b686f3194e54b56dd275610a2");
}

TEST_CASE("a build from picomap's inputs gives picomap's bytes, creation time excepted") {
  TempDir t;
  for (const auto& name : kNames) {
    INFO(name);
    std::string base = build(t / name, inputs(name));
    CHECK(testutil::read_file(base + ".dat") == testutil::read_file(kDir + name + ".dat"));
    CHECK(testutil::read_file(base + ".starts.npy") == testutil::read_file(kDir + name + ".starts.npy"));
    RaggedMeta ours = parse_ragged_json(testutil::read_file(base + ".json"), base);
    RaggedMeta theirs = parse_ragged_json(testutil::read_file(kDir + name + ".json"), name);
    ours.creation_time = theirs.creation_time;
    CHECK(format_ragged_json(ours) == testutil::read_file(kDir + name + ".json"));
    CHECK(fs::exists(base + ".hashes.npy"));
    CHECK(!fs::exists(base + ".publish"));
    CHECK(!fs::exists(base + ".dat.tmp"));
  }
  build(t / "empty", {});
  CHECK(testutil::read_file(t / "empty.starts.npy") == testutil::read_file(kDir + "empty.starts.npy"));
  CHECK(parse_ragged_json(testutil::read_file(t / "empty.json"), "e").hash == "8ca6416b686f3194e54b56dd275610a2");
}

TEST_CASE("the builder refuses what picomap lets through or cannot store") {
  TempDir t;
  const float v[8] = {};
  const int32_t iv[4] = {};
  RaggedBuilder b(t / "x");
  b.add("<f4", {2, 2}, v, 16, "a.npy");
  CHECK_THROWS_WITH(b.add("<i4", {1, 2}, iv, 8, "b.npy"), "b.npy: dtype <i4 differs from the first item's <f4");
  CHECK_THROWS_WITH(b.add("<f4", {1, 3}, v, 12, "c.npy"), "c.npy: trailing shape (3,) differs from the first item's (2,)");
  CHECK_THROWS_WITH(b.add("<f4", {}, v, 4, "d.npy"), Catch::Contains("d.npy: a 0-d array has no rows"));
  CHECK_THROWS_WITH(b.add("<f4", {0, 2}, v, 0, "e.npy"), Catch::Contains("e.npy: item of shape (0, 2) has no elements"));
  CHECK_THROWS_WITH(b.add("<f4", {2, 2}, v, 12, "f.npy"), Catch::Contains("f.npy: 12 bytes for an item of shape (2, 2)"));
  CHECK_THROWS_WITH(b.add("|O", {1}, v, 8, "g.npy"), Catch::Contains("object dtype"));
  RaggedBuilder one_d(t / "y");
  one_d.add("<f4", {3}, v, 12, "h.npy");
  // picomap accepts this after 1-D items and then cannot verify what it wrote.
  CHECK_THROWS_WITH(one_d.add("<f4", {2, 1}, v, 8, "i.npy"), "i.npy: trailing shape (1,) differs from the first item's ()");
}

TEST_CASE("an abandoned build leaves nothing and the old dataset untouched") {
  TempDir t;
  std::string base = build(t / "x", inputs("tiny_example"));
  std::string before = testutil::read_file(base + ".json");
  {
    RaggedBuilder b(base);
    const float v[2] = {9, 9};
    b.add("<f4", {1, 2}, v, 8, "new");
  }  // no commit
  CHECK(testutil::read_file(base + ".json") == before);
  CHECK(!fs::exists(base + ".dat.tmp"));
  CHECK(verify_ragged(base).ok);
}

TEST_CASE("a publish interrupted after its first rename is rolled forward on open") {
  TempDir t;
  std::string base = build(t / "x", inputs("tiny_example"));
  {
    RaggedBuilder b(base);
    for (const auto& it : inputs("f32_ragged"))
      b.add(it.header.descr, it.header.shape, it.data.data(), it.data.size(), "item");
    b.stage();
    fs::rename(base + ".dat.tmp", base + ".dat");  // the crash: only the data file was renamed
  }
  CHECK(fs::exists(base + ".publish"));
  auto ds = open_ragged_dataset(base);  // would be a mix of old JSON and new data without recovery
  CHECK(ds->count() == 5);
  CHECK(!fs::exists(base + ".publish"));
  CHECK(verify_ragged(base).ok);
  CHECK(testutil::read_file(base + ".dat") == testutil::read_file(kDir + "f32_ragged.dat"));
}

TEST_CASE("inconsistent files are refused with the file named") {
  TempDir t;
  std::string base = copy_golden(t, "f32_ragged");  // lengths 3,1,7,16,2
  std::string starts = testutil::read_file(base + ".starts.npy");
  auto set_start = [&](int i, uint64_t v) {
    std::string s = starts;
    for (int k = 0; k < 8; ++k) s[128 + 8 * i + k] = static_cast<char>((v >> (8 * k)) & 0xff);
    testutil::write_file(base + ".starts.npy", s);
  };
  set_start(2, 3);  // item 1 empty
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains(base + ".starts.npy: entries 1 and 2 (3, 3) do not increase"));
  set_start(2, 2);  // decreasing
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains("do not increase"));
  set_start(0, 1);
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains("first entry is 1, not 0"));
  set_start(5, 30);
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains("last entry 30 disagrees with " + base + ".json total_rows 29"));
  testutil::write_file(base + ".starts.npy", format_starts_npy({0, 3, 4, 11, 29}));
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains("has 5 entries but " + base + ".json says count 5"));
  testutil::write_file(base + ".starts.npy", starts);
  fs::resize_file(base + ".dat", fs::file_size(base + ".dat") + 4);
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains(base + ".dat: is 468 bytes but 29 rows of 16 bytes need 464"));
  fs::resize_file(base + ".dat", 464);
  std::string json = testutil::read_file(base + ".json");
  testutil::write_file(base + ".json", std::regex_replace(json, std::regex("\"float32\""), "\"float33\""));
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains(base + ".json: dtype 'float33'"));
  testutil::write_file(base + ".json", json);
  fs::remove(base + ".starts.npy");
  CHECK_THROWS_WITH(open_ragged_dataset(base), Catch::Contains(base + ".starts.npy"));
  CHECK_THROWS_WITH(open_ragged_dataset(t / "nothing"), Catch::Contains("no such blob or ragged dataset"));
}

TEST_CASE("verify names the first damaged item when per-item hashes exist") {
  TempDir t;
  std::string base = copy_golden(t, "f32_ragged");
  update_ragged_item_hashes(base);
  REQUIRE(fs::exists(base + ".hashes.npy"));
  CHECK(verify_ragged(base).ok);
  flip_byte(base + ".dat", 12 * 16 + 5);  // row 12: item 2 covers rows 4..10, item 3 rows 11..26
  VerifyReport r = verify_ragged(base);
  CHECK(!r.ok);
  CHECK(r.has_item_hashes);
  REQUIRE(r.first_bad);
  CHECK(*r.first_bad == 3);
  CHECK_THROWS_WITH(update_ragged_item_hashes(base), Catch::Contains("refusing to record hashes of damaged data"));
  auto ds = open_ragged_dataset(base);
  std::vector<std::byte> buf(ds->item_offset(ds->count()));
  CHECK_NOTHROW(ds->read_checked(0, ds->item_offset(3), buf.data()));
  testutil::check_error([&] { ds->read_checked(0, ds->item_offset(5), buf.data()); }, Errc::kCorrupt,
                        "item 3 does not match its recorded hash");
}

TEST_CASE("without per-item hashes verify still detects damage as a whole") {
  TempDir t;
  std::string base = copy_golden(t, "u8_img");
  flip_byte(base + ".dat", 7);
  VerifyReport r = verify_ragged(base);
  CHECK(!r.ok);
  CHECK(!r.has_item_hashes);
  CHECK(!r.first_bad);
}

TEST_CASE("a sidecar left from other contents is stale and ignored") {
  TempDir t;
  std::string base = build(t / "x", inputs("tiny_example"));
  std::string sidecar = testutil::read_file(base + ".hashes.npy");
  build(base, inputs("f32_ragged"));  // e.g. picomap rebuilt it, leaving our sidecar
  testutil::write_file(base + ".hashes.npy", sidecar);
  VerifyReport r = verify_ragged(base);
  CHECK(r.ok);
  CHECK(r.stale_item_hashes);
  CHECK(!r.has_item_hashes);
}

TEST_CASE("items load as zero-copy views or as copies") {
  auto ds = open_ragged_dataset(kDir + "i64_2x3");
  auto items = inputs("i64_2x3");
  for (int64_t i = 0; i < ds->count(); ++i) {
    ItemView v = ds->item_view(i);
    CHECK(std::string(reinterpret_cast<const char*>(v.data), v.size) == items[i].data);
    auto copy = ds->item_copy(i);
    CHECK(std::string(reinterpret_cast<const char*>(copy.data()), copy.size()) == items[i].data);
  }
  ItemView last = ds->item_view(2);
  ds.reset();  // the view keeps its mapping alive
  CHECK(std::string(reinterpret_cast<const char*>(last.data), last.size) == items[2].data);
  CHECK_THROWS_WITH(open_ragged_dataset(kDir + "i64_2x3")->item_view(3), Catch::Contains("item 3 out of range for 3 items"));
}
