// TensorDB: the fixture Python wrote reads back; ours is byte-identical to
// it; the committed row count is recovered as Python does; bad input is
// refused before anything changes.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "tensorblob/tensordb.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kFixture = "tests/conformance/tensorblob/db_two_fields";

// tensorblob_ref._db_price / _db_embed: price[i] = 1.5 i, embed[i][j] = i + j/4.
Tensor price_rows(int64_t first, int64_t n) {
  Tensor t(DType::kFloat32, {n, 1});
  for (int64_t i = 0; i < n; ++i) t.values<float>()[i] = static_cast<float>(first + i) * 1.5f;
  return t;
}
uint16_t half_bits(double v) {  // exact for the small quarter steps used here
  if (v == 0) return 0;
  int e = 0;
  const double m = std::frexp(v, &e);  // v = m 2^e, m in [0.5, 1)
  return static_cast<uint16_t>(((e - 1 + 15) << 10) | static_cast<int>((2 * m - 1) * 1024));
}
Tensor embed_rows(int64_t first, int64_t n) {
  Tensor t(DType::kFloat16, {n, 4});
  auto v = t.values<uint16_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j) v[i * 4 + j] = half_bits(static_cast<double>(first + i) + j / 4.0);
  return t;
}
Fields rows(int64_t first, int64_t n) { return {{"price", price_rows(first, n)}, {"embed", embed_rows(first, n)}}; }

DBOptions fixture_options() {
  DBOptions o;
  o.schema = {{"price", "float32", {1}}, {"embed", "float16", {4}}};
  o.block_size = 3;
  return o;
}

std::string copy_fixture(const TempDir& t) {
  const std::string to = t / "db";
  fs::copy(kFixture, to, fs::copy_options::recursive);
  return to;
}

}  // namespace

TEST_CASE("the TensorDB Python wrote reads back by row, slice and gather") {
  TensorDB db = TensorDB::open(kFixture, "r");
  CHECK(db.size() == 5);
  CHECK(db.warnings().empty());
  REQUIRE(db.schema().size() == 2);
  CHECK(db.schema()[0] == FieldSpec{"embed", "float16", {4}});  // sorted, as Python after a reopen
  CHECK(db.schema()[1] == FieldSpec{"price", "float32", {1}});
  CHECK(db.conf().block_size == 3);
  Fields r = db.get(-1);
  CHECK(r.at("price").shape() == Shape{1});
  CHECK(r.at("price").values<float>()[0] == 6.0f);
  CHECK(db.slice(1, 4) == rows(1, 3));
  CHECK(db.slice(std::nullopt, std::nullopt) == rows(0, 5));
  Fields back = db.slice(std::nullopt, std::nullopt, -2);  // rows 4, 2, 0
  CHECK(back.at("price").values<float>()[1] == 3.0f);
  const std::vector<int64_t> idx = {4, 0, -2};
  Fields g = db.gather(idx);
  CHECK(g.at("embed").shape() == Shape{3, 4});
  CHECK(g.at("price").values<float>()[2] == 4.5f);
  CHECK_THROWS_MATCHES(db.get(5), Error, Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::kOutOfRange; }));
  CHECK_THROWS_AS(db.field("nope"), Error);
  CHECK(db.field("price").size() == 5);
}

TEST_CASE("a TensorDB written by us holds Python's bytes, block names excepted") {
  TempDir t;
  const std::string out = t / "db";
  {
    TensorDB db = TensorDB::open(out, "w", fixture_options());
    CHECK(db.append(rows(0, 2)) == 2);
    CHECK(db.append(rows(2, 3)) == 3);
    db.close();
  }
  for (const char* rel : {".conf", ".stat", "price/.conf", "embed/.conf"})
    CHECK(testutil::read_file(out + "/" + rel) == testutil::read_file(kFixture + "/" + rel));
  for (const char* f : {"price", "embed"}) {
    auto ours = parse_blob_status(testutil::read_file(out + "/" + f + "/.stat"), "ours");
    auto theirs = parse_blob_status(testutil::read_file(kFixture + "/" + f + "/.stat"), "theirs");
    REQUIRE(ours.blocks.size() == theirs.blocks.size());
    CHECK(ours.len == theirs.len);
    for (size_t k = 0; k < ours.blocks.size(); ++k)
      CHECK(testutil::read_file(out + "/" + f + "/" + ours.blocks[k]) ==
            testutil::read_file(kFixture + "/" + f + "/" + theirs.blocks[k]));
  }
  CHECK(TensorDB::open(out, "r").slice(std::nullopt, std::nullopt) == rows(0, 5));
}

TEST_CASE("fields longer than the DB's commit: read-only opens show the minimum, writable ones trim") {
  TempDir t;
  const std::string p = copy_fixture(t);
  {  // a crash after the field's commit and before the DB's
    Blob price = Blob::open(p + "/price", "a");
    price.write(price_rows(5, 2));
    price.close();
  }
  {
    TensorDB db = TensorDB::open(p, "r");
    CHECK(db.size() == 5);
    REQUIRE(db.warnings().size() == 1);
    CHECK(db.warnings()[0].find("price: 7 rows, the database commits 5") != std::string::npos);
    CHECK(db.field("price").size() == 7);  // left alone
    CHECK(db.slice(std::nullopt, std::nullopt) == rows(0, 5));
    CHECK_THROWS_AS(db.get(5), Error);
    CHECK_THROWS_AS(db.gather(std::vector<int64_t>{6}), Error);
  }
  CHECK(Blob::open(p + "/price", "r").size() == 7);
  {
    TensorDB db = TensorDB::open(p, "a");
    CHECK(db.size() == 5);
    db.append(rows(5, 1));
    db.close();
  }
  CHECK(testutil::read_file(p + "/.stat") == "{\"len\":6}");
  CHECK(Blob::open(p + "/price", "r").size() == 6);
  CHECK(TensorDB::open(p, "r").slice(std::nullopt, std::nullopt) == rows(0, 6));
}

TEST_CASE("a DB count below every field's is the committed count") {
  TempDir t;
  const std::string p = copy_fixture(t);
  testutil::write_file(p + "/.stat", "{\"len\":3}");
  CHECK(TensorDB::open(p, "r").size() == 3);
  {
    TensorDB db = TensorDB::open(p, "r+");
    CHECK(db.size() == 3);
  }
  CHECK(Blob::open(p + "/embed", "r").size() == 3);
}

TEST_CASE("a missing DB status: an error in r and a, recreated empty in w") {
  TempDir t;
  const std::string p = copy_fixture(t);
  fs::remove(p + "/.stat");
  for (const char* mode : {"r", "a", "r+"}) {
    INFO(mode);
    CHECK_THROWS_WITH(TensorDB::open(p, mode), Catch::Contains("Status file missing for database at"));
  }
  {
    TensorDB db = TensorDB::open(p, "w");
    CHECK(db.size() == 0);
  }
  CHECK(testutil::read_file(p + "/.stat") == "{\"len\":0}");
  CHECK(Blob::open(p + "/price", "r").size() == 0);
}

TEST_CASE("appends that do not fit the schema change nothing") {
  TempDir t;
  const std::string p = copy_fixture(t);
  TensorDB db = TensorDB::open(p, "a");
  Fields missing = {{"price", price_rows(5, 1)}};
  CHECK_THROWS_WITH(db.append(missing), Catch::Contains("rows lack field 'embed'"));
  Fields extra = rows(5, 1);
  extra.emplace("other", price_rows(0, 1));
  CHECK_THROWS_WITH(db.append(extra), Catch::Contains("no field 'other'"));
  Fields uneven = {{"price", price_rows(5, 2)}, {"embed", embed_rows(5, 1)}};
  CHECK_THROWS_WITH(db.append(uneven), Catch::Contains("disagree on the number of rows"));
  Fields wrong_type = {{"price", embed_rows(5, 1)}, {"embed", embed_rows(5, 1)}};
  CHECK_THROWS_WITH(db.append(wrong_type), Catch::Contains("holds float32"));
  Fields wrong_shape = {{"price", Tensor(DType::kFloat32, {1, 2})}, {"embed", embed_rows(5, 1)}};
  CHECK_THROWS_WITH(db.append(wrong_shape), Catch::Contains("rows have shape"));
  CHECK(db.size() == 5);
  db.close();
  for (const char* f : {"price", "embed"})
    CHECK(testutil::read_file(p + "/" + f + "/.stat") == testutil::read_file(kFixture + "/" + f + "/.stat"));
  CHECK(testutil::read_file(p + "/.stat") == "{\"len\":5}");
}

TEST_CASE("truncate cuts every field and the DB; read-only handles refuse writes") {
  TempDir t;
  const std::string p = copy_fixture(t);
  {
    TensorDB db = TensorDB::open(p, "r+");
    CHECK_THROWS_AS(db.truncate(6), Error);
    db.truncate(2);
    CHECK(db.size() == 2);
  }
  TensorDB db = TensorDB::open(p, "r");
  CHECK(db.slice(std::nullopt, std::nullopt) == rows(0, 2));
  CHECK(db.field("embed").size() == 2);
  CHECK_THROWS_WITH(db.append(rows(2, 1)), Catch::Contains("not open for writing"));
}

TEST_CASE("creating a DB checks its schema first and leaves nothing behind when refused") {
  TempDir t;
  DBOptions o;
  CHECK_THROWS_WITH(TensorDB::open(t / "a", "w", o), Catch::Contains("needs a schema"));
  for (const char* bad : {"", ".hidden", "a/b", ".."}) {
    INFO(bad);
    o.schema = {{bad, "float32", {1}}};
    CHECK_THROWS_AS(TensorDB::open(t / "a", "w", o), Error);
  }
  o.schema = {{"x", "float32", {1}}, {"x", "int8", {2}}};
  CHECK_THROWS_WITH(TensorDB::open(t / "a", "w", o), Catch::Contains("named twice"));
  o.schema = {{"x", "nonsense", {1}}};
  CHECK_THROWS_AS(TensorDB::open(t / "a", "w", o), Error);
  CHECK(!fs::exists(t / "a"));
  CHECK_THROWS_AS(TensorDB::open(t / "missing", "r"), Error);
}

TEST_CASE("a field that disagrees with the schema is named in the error") {
  TempDir t;
  const std::string p = copy_fixture(t);
  fs::remove_all(p + "/price");
  OpenOptions o;
  o.dtype = "int8";
  o.shape = Shape{1};
  o.block_size = 3;
  Blob::open(p + "/price", "w", o).close();
  CHECK_THROWS_WITH(TensorDB::open(p, "r"), Catch::Contains("/price: field config (int8") &&
                                                Catch::Contains("disagrees with the database schema"));
}

TEST_CASE("TensorDB .conf and .stat parsing") {
  const std::string conf = testutil::read_file(kFixture + "/.conf");
  DBConf c = parse_db_conf(conf, "x/.conf");
  CHECK(format_db_conf(c) == conf);
  CHECK(format_db_conf(c, ConfFlavor::kQualified).find("\"tensorblob._db.TensorDB\"") != std::string::npos);
  CHECK(parse_db_conf(format_db_conf(c, ConfFlavor::kQualified), "q").schema == c.schema);
  CHECK_THROWS_WITH(parse_db_conf(testutil::read_file("tests/conformance/tensorblob/bool/.conf"), "b/.conf"),
                    Catch::StartsWith("b/.conf: ") && Catch::Contains("not a TensorDB"));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = conf;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  CHECK_THROWS_WITH(parse_db_conf(with("\"price\"", "\"../price\""), "p"), Catch::Contains("not a valid field name"));
  CHECK_THROWS_WITH(parse_db_conf(with("\"price\"", "\".price\""), "p"), Catch::Contains("not a valid field name"));
  CHECK_THROWS_WITH(parse_db_conf(with("\"block_size\": 3", "\"block_size\": 0"), "p"), Catch::Contains("at least 1"));
  CHECK_THROWS_WITH(parse_db_conf(with("\"float16\"", "\"quux\""), "p"), Catch::StartsWith("p: field"));
  CHECK_THROWS_WITH(parse_db_conf(with("\"schema\"", "\"extra\": 1, \"schema\""), "p"), Catch::Contains("unknown key 'extra'"));
  CHECK_THROWS_AS(parse_db_conf("{\"__notes__\":{\"class_name\":\"TensorDB\"},\"block_size\":3,\"schema\":{}}", "p"),
                  FormatError);
  CHECK(parse_db_status("{\"len\":5}", "s") == 5);
  CHECK(parse_db_status(" { \"len\" : 0 } ", "s") == 0);
  CHECK_THROWS_WITH(parse_db_status("{\"len\":5,\"bds\":[]}", "s"), Catch::Contains("unknown key 'bds'"));
  CHECK_THROWS_WITH(parse_db_status("{\"len\":-1}", "s"), Catch::Contains("negative"));
  CHECK_THROWS_WITH(parse_db_status("{}", "s"), Catch::Contains("missing key 'len'"));
  CHECK_THROWS_AS(parse_db_status("[", "s"), FormatError);
  CHECK(format_db_status(12) == "{\"len\":12}");
  CHECK(is_valid_field_name("embed.v2"));
  CHECK(!is_valid_field_name(std::string(256, 'a')));
  CHECK(!is_valid_field_name(std::string("a\0b", 3)));
}
