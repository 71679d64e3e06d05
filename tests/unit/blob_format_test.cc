#include "tensorblob/blob_format.h"

#include <catch2/catch.hpp>
#include <set>

#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;

namespace {

const char* kConf23 =
    "{\n"
    "  \"__notes__\": {\n"
    "    \"args\": [],\n"
    "    \"class_name\": \"TensorBlob\",\n"
    "    \"kwargs\": {},\n"
    "    \"using_default_values\": []\n"
    "  },\n"
    "  \"block_size\": 4,\n"
    "  \"dtype\": \"float32\",\n"
    "  \"shape\": [\n"
    "    2,\n"
    "    3\n"
    "  ]\n"
    "}\n";

const std::string kFixtures = "tests/conformance/tensorblob/";

}  // namespace

TEST_CASE(".conf is written byte for byte as Python tensorblob writes it") {
  BlobConf c = make_blob_conf("x", "float32", {2, 3}, 4);
  std::string text = format_blob_conf(c);
  CHECK(text == kConf23);
  CHECK(text.size() == 194);
}

TEST_CASE(".conf of a 0-d tensor writes an empty shape list") {
  std::string text = format_blob_conf(make_blob_conf("x", "int16", {}, 4));
  CHECK(text.find("\"shape\": []\n}") != std::string::npos);
  CHECK(text == testutil::read_file(kFixtures + "i16_scalar/.conf"));
}

TEST_CASE(".conf with an alias dtype is written with the canonical name") {
  BlobConf c = make_blob_conf("x", "long", {5}, 3);
  CHECK(c.dtype == DType::kInt64);
  CHECK(format_blob_conf(c) == testutil::read_file(kFixtures + "i64_2full/.conf"));
}

TEST_CASE(".conf qualified flavour spells the class as config-mixin 0.2.0a1 does") {
  BlobConf c = make_blob_conf("x", "float32", {2, 3}, 4);
  CHECK(format_blob_conf(c, ConfFlavor::kQualified) ==
        testutil::read_file(kFixtures + "conf_variants/blob.conf.0.2.0a1-inferred"));
}

TEST_CASE(".conf parses every spelling tensorblob has written") {
  for (const char* f : {"conf_variants/blob.conf.0.2.0a1-inferred", "conf_variants/blob.conf.legacy-0.1.0",
                        "f32_3blocks/.conf"}) {
    INFO(f);
    BlobConf c = parse_blob_conf(testutil::read_file(kFixtures + f), f);
    CHECK(c.dtype == DType::kFloat32);
    CHECK(c.shape == Shape{2, 3});
    CHECK(c.block_size == 4);
    CHECK(c.item_bytes == 24);
    CHECK(c.block_bytes == 96);
  }
}

TEST_CASE(".conf accepts any key order, whitespace, an alias and a bare-int shape") {
  BlobConf c = parse_blob_conf(
      R"({"shape": 7, "dtype":"half","block_size":2,"__notes__":{"class_name":"x.y.TensorBlob"}})", "p");
  CHECK(c.dtype == DType::kFloat16);
  CHECK(c.dtype_name == "half");
  CHECK(c.shape == Shape{7});
  CHECK(c.item_bytes == 14);
}

TEST_CASE(".conf errors name the file and the problem") {
  auto bad = [](const std::string& text) { return parse_blob_conf(text, "/d/.conf"); };
  const std::string notes = R"("__notes__":{"class_name":"TensorBlob"})";
  CHECK_THROWS_WITH(bad(""), Catch::StartsWith("/d/.conf: invalid JSON"));
  CHECK_THROWS_WITH(bad("{\"__notes__\": "), Catch::StartsWith("/d/.conf: invalid JSON"));
  CHECK_THROWS_WITH(bad("[1,2]"), Catch::Contains("must be a JSON object"));
  CHECK_THROWS_WITH(bad(R"({"dtype":"float32","shape":[1],"block_size":1})"), Catch::Contains("class_name"));
  CHECK_THROWS_WITH(bad(R"({"__notes__":{"class_name":"Model"},"dtype":"float32","shape":[1],"block_size":1})"),
                    Catch::Contains("not TensorBlob"));
  CHECK_THROWS_WITH(bad(testutil::read_file(kFixtures + "db_two_fields/.conf")), Catch::Contains("TensorDB"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"shape":[1],"block_size":1})"), Catch::Contains("missing key 'dtype'"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","block_size":1})"), Catch::Contains("missing key 'shape'"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[1]})"), Catch::Contains("'block_size'"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[1],"block_size":1,"x":1})"),
                    Catch::Contains("unknown key 'x'"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"floot","shape":[1],"block_size":1})"),
                    Catch::Contains("/d/.conf: unknown dtype 'floot'"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":3,"shape":[1],"block_size":1})"), Catch::Contains("'dtype' must be"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[-2],"block_size":1})"),
                    Catch::Contains("dimension below 1"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[0],"block_size":1})"),
                    Catch::Contains("dimension below 1"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[2.5],"block_size":1})"),
                    Catch::Contains("must be an integer"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":"2","block_size":1})"),
                    Catch::Contains("list of integers"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[1],"block_size":0})"),
                    Catch::Contains("block_size must be at least 1"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[4294967296,4294967296],"block_size":1})"),
                    Catch::Contains("overflows"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[1],"block_size":18446744073709551615})"),
                    Catch::Contains("too large"));
  CHECK_THROWS_WITH(bad("{" + notes + R"(,"dtype":"float32","shape":[65536],"block_size":9223372036854775807})"),
                    Catch::Contains("overflows"));
}

TEST_CASE(".stat is written compactly with no newline") {
  CHECK(format_blob_status({}) == R"({"len":0,"bds":[]})");
  CHECK(format_blob_status({10, {"a", "b"}}) == R"({"len":10,"bds":["a","b"]})");
  std::string golden = testutil::read_file(kFixtures + "f32_3blocks/.stat");
  CHECK(format_blob_status(parse_blob_status(golden, "g")) == golden);
}

TEST_CASE(".stat takes defaults for missing keys like Python") {
  BlobStatus s = parse_blob_status("{}", "p");
  CHECK(s.len == 0);
  CHECK(s.blocks.empty());
  s = parse_blob_status(R"( { "bds" : ["x"] , "len" : 3 } )", "p");
  CHECK(s.len == 3);
  CHECK(s.blocks == std::vector<std::string>{"x"});
}

TEST_CASE(".stat errors name the file and refuse block names outside the directory") {
  auto bad = [](const std::string& text) { return parse_blob_status(text, "/d/.stat"); };
  CHECK_THROWS_WITH(bad(""), Catch::StartsWith("/d/.stat: invalid JSON"));
  CHECK_THROWS_WITH(bad(R"({"len":1,"bds":["a"])"), Catch::StartsWith("/d/.stat: invalid JSON"));
  CHECK_THROWS_WITH(bad(R"({"len":-1,"bds":[]})"), Catch::Contains("'len' is negative"));
  CHECK_THROWS_WITH(bad(R"({"len":"1","bds":[]})"), Catch::Contains("'len' must be an integer"));
  CHECK_THROWS_WITH(bad(R"({"len":1,"bds":"a"})"), Catch::Contains("list of block file names"));
  CHECK_THROWS_WITH(bad(R"({"len":1,"bds":[1]})"), Catch::Contains("not a string"));
  CHECK_THROWS_WITH(bad(R"({"len":1,"bds":[],"extra":0})"), Catch::Contains("unknown key 'extra'"));
  for (const char* name : {"../x", "/etc/passwd", "a/b", "..", ".", "", ".conf", ".stat", ".stat.tmp"}) {
    INFO(name);
    CHECK_THROWS_WITH(bad(std::string(R"({"len":1,"bds":[")") + name + "\"]}"),
                      Catch::Contains("not a plain file name"));
  }
  CHECK_THROWS_WITH(bad(R"({"len":1,"bds":["a\u0000b"]})"), Catch::Contains("not a plain file name"));
  CHECK_THROWS_WITH(bad(R"({"len":2,"bds":["a","a"]})"), Catch::Contains("listed twice"));
}

TEST_CASE("new block names are distinct lowercase UUIDv4 strings") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string n = new_block_name();
    REQUIRE(n.size() == 36);
    CHECK(n[8] == '-');
    CHECK(n[13] == '-');
    CHECK(n[14] == '4');
    CHECK(std::string("89ab").find(n[19]) != std::string::npos);
    CHECK(is_valid_block_name(n));
    seen.insert(n);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("deeply nested JSON is refused without exhausting the stack") {
  // Found by tests/hostile: describing the bad entry once serialised it whole.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  CHECK_THROWS_WITH(parse_blob_status("{\"bds\":" + deep + "}", "/d/.stat"), Catch::Contains("not a string: a list"));
  CHECK_THROWS_WITH(parse_blob_status("{\"len\":" + deep + "}", "/d/.stat"), Catch::Contains("got a list"));
  CHECK_THROWS_AS(parse_blob_conf(deep, "/d/.conf"), FormatError);
}
