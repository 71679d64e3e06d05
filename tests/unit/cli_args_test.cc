#include "args.h"

#include <catch2/catch.hpp>

using namespace tblob;

TEST_CASE("options take values in both spellings and positionals keep their order") {
  ArgSpec spec{{"--create"}, {"--dtype", "--shape"}};
  ParsedArgs a = parse_args({"dir", "--dtype", "float32", "x.npy", "--shape=3,4", "--create", "-1"}, spec);
  CHECK(a.positional == std::vector<std::string>{"dir", "x.npy", "-1"});
  CHECK(*a.get("--dtype") == "float32");
  CHECK(*a.get("--shape") == "3,4");
  CHECK(a.has("--create"));
  CHECK(!a.get("--block-size"));
  CHECK(parse_args({"-h"}, spec).has("--help"));
  CHECK(parse_args({"--", "--create"}, spec).positional == std::vector<std::string>{"--create"});
}

TEST_CASE("bad option use is a usage error naming the option") {
  ArgSpec spec{{"--create"}, {"--dtype"}};
  CHECK_THROWS_WITH(parse_args({"--nope"}, spec), "unknown option --nope");
  CHECK_THROWS_WITH(parse_args({"--dtype"}, spec), "option --dtype needs a value");
  CHECK_THROWS_WITH(parse_args({"--create=1"}, spec), "option --create takes no value");
  CHECK_THROWS_WITH(parse_args({"--dtype", "a", "--dtype=b"}, spec), "option --dtype given twice");
}

TEST_CASE("shapes parse from commas, Python tuples and the empty scalar shape") {
  CHECK(parse_shape("768") == tensorblob::Shape{768});
  CHECK(parse_shape("3,224,224") == tensorblob::Shape{3, 224, 224});
  CHECK(parse_shape("(2, 3)") == tensorblob::Shape{2, 3});
  CHECK(parse_shape("(5,)") == tensorblob::Shape{5});
  CHECK(parse_shape("") == tensorblob::Shape{});
  CHECK(parse_shape("()") == tensorblob::Shape{});
  CHECK_THROWS_WITH(parse_shape("3,,4"), Catch::Contains("must be an integer, got ''"));
  CHECK_THROWS_WITH(parse_shape("3,-4"), Catch::Contains("at least 1"));
  CHECK_THROWS_WITH(parse_shape("0"), Catch::Contains("at least 1"));
  CHECK_THROWS_WITH(parse_shape("3x4"), Catch::Contains("got '3x4'"));
  CHECK_THROWS_WITH(parse_shape("99999999999999999999"), Catch::Contains("must be an integer"));
  CHECK_THROWS_AS(parse_shape("4294967296,4294967296"), std::exception);
}

TEST_CASE("integers are whole decimal numbers only") {
  CHECK(parse_int("42", "n") == 42);
  CHECK(parse_int("-7", "n") == -7);
  for (const char* bad : {"", "+1", "1.5", "0x10", "12abc", " 1", "9223372036854775808"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_int(bad, "n"), UsageError);
  }
}

TEST_CASE("ranges follow Python slicing of [0, count)") {
  using R = std::pair<int64_t, int64_t>;
  CHECK(parse_range("5:9", 20) == R{5, 9});
  CHECK(parse_range(":4", 20) == R{0, 4});
  CHECK(parse_range("15:", 20) == R{15, 20});
  CHECK(parse_range("-3:", 20) == R{17, 20});
  CHECK(parse_range("-100:100", 20) == R{0, 20});
  CHECK(parse_range("7:3", 20) == R{7, 7});
  CHECK(parse_range(":", 0) == R{0, 0});
  CHECK_THROWS_WITH(parse_range("5", 20), Catch::Contains("range must be A:B"));
  CHECK_THROWS_WITH(parse_range("1:2:3", 20), Catch::Contains("range must be A:B"));
  CHECK_THROWS_WITH(parse_range("a:2", 20), Catch::Contains("range bound must be an integer"));
}
