#include "tensorblob/npy.h"

#include <catch2/catch.hpp>

#include "tensorblob/error.h"

using namespace tensorblob;

namespace {

struct Case {
  const char* descr;
  Shape shape;
  std::string bytes;  // numpy 1.24's _write_array_header output, captured once
};

const std::vector<Case> kNumpyHeaders = {
    {"<f4", Shape{3LL, 768LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 768), }                                                        \x0a", 128)},
    {"|b1", Shape{}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '|b1', 'fortran_order': False, 'shape': (), }                                                              \x0a", 128)},
    {"<i2", Shape{5LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '<i2', 'fortran_order': False, 'shape': (5,), }                                                            \x0a", 128)},
    {"<f8", Shape{10000000LL, 2LL, 3LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000, 2, 3), }                                                \x0a", 128)},
    {"|u1", Shape{1LL, 8LL, 8LL, 3LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 8, 8, 3), }                                                    \x0a", 128)},
    {"<f4", Shape{1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL, 1LL}, std::string("\x93NUMPY\x01\x00" "\xb6\x00" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }                                                                    \x0a", 192)},
    {"<c16", Shape{123456789012LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '<c16', 'fortran_order': False, 'shape': (123456789012,), }                                                \x0a", 128)},
    {"<u8", Shape{0LL}, std::string("\x93NUMPY\x01\x00" "v\x00" "{'descr': '<u8', 'fortran_order': False, 'shape': (0,), }                                                            \x0a", 128)},
};

std::string v1(const std::string& dict) {
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>(dict.size() >> 8));
  return out + dict;
}

}  // namespace

TEST_CASE("npy headers are byte-identical to what numpy.save writes") {
  for (const auto& c : kNumpyHeaders) {
    INFO(c.descr << " " << shape_to_string(c.shape));
    std::string h = npy_header(c.descr, c.shape);
    CHECK(h == c.bytes);
    CHECK(h.size() % 64 == 0);
  }
}

TEST_CASE("npy headers parse back to their descr, shape and data offset") {
  for (const auto& c : kNumpyHeaders) {
    INFO(c.descr);
    NpyHeader h = parse_npy_header(c.bytes + "data", "x.npy");
    CHECK(h.descr == c.descr);
    CHECK(h.shape == c.shape);
    CHECK(!h.fortran_order);
    CHECK(h.data_offset == c.bytes.size());
    CHECK(h.major_version == 1);
  }
}

TEST_CASE("npy parser accepts versions 2 and 3, other key orders, and old spellings") {
  std::string dict = "{'shape': (2L, 3), 'fortran_order': True, \"descr\": '>f4'}\n";
  std::string v2("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) v2.push_back(static_cast<char>(i == 0 ? dict.size() : 0));
  NpyHeader h = parse_npy_header(v2 + dict, "v2.npy");
  CHECK(h.descr == ">f4");
  CHECK(h.fortran_order);
  CHECK(h.shape == Shape{2, 3});
  CHECK(h.major_version == 2);
  CHECK(h.data_offset == 12 + dict.size());
  v2[6] = 3;
  CHECK(parse_npy_header(v2 + dict, "v3.npy").major_version == 3);
}

TEST_CASE("npy header length is known from the prefix") {
  std::string h = npy_header("<f4", {3});
  CHECK(!npy_header_length(h.substr(0, 7), "p"));
  CHECK(!npy_header_length(h.substr(0, 9), "p"));
  CHECK(*npy_header_length(h.substr(0, 10), "p") == h.size());
  CHECK_THROWS_WITH(npy_header_length("GIF89a....", "img.npy"), Catch::Contains("img.npy: not a .npy file"));
}

TEST_CASE("malformed npy headers are format errors naming the file") {
  auto bad = [](const std::string& bytes) { return parse_npy_header(bytes, "bad.npy"); };
  CHECK_THROWS_WITH(bad(""), Catch::Contains("bad.npy: file too short"));
  CHECK_THROWS_WITH(bad(std::string("\x93NUMPY\x04\x00\x10\x00", 10)), Catch::Contains("version 4.0"));
  CHECK_THROWS_WITH(bad(std::string("\x93NUMPY\x01\x00\xff\x00{}", 12)), Catch::Contains("claims 265 bytes"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': False}\n")), Catch::Contains("lacks"));
  CHECK_THROWS_WITH(bad(v1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n")),
                    Catch::Contains("structured dtypes"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n")), Catch::Contains("True or False"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n")), Catch::Contains("non-negative"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n")),
                    Catch::Contains("overflows"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n")),
                    Catch::Contains("unexpected key 'x'"));
  CHECK_THROWS_WITH(bad(v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing\n")),
                    Catch::Contains("text after"));
  CHECK_THROWS_WITH(bad(v1("{'descr: '<f4'}")), Catch::Contains("bad.npy: npy header"));
  CHECK_THROWS_WITH(bad(v1(std::string("{'descr': '<f4'\0}", 17))), Catch::Contains("NUL"));
}

TEST_CASE("numpy typestrs map to blob dtypes when the blob format can hold them") {
  CHECK(dtype_from_typestr("<f4") == DType::kFloat32);
  CHECK(dtype_from_typestr("=f8") == DType::kFloat64);
  CHECK(dtype_from_typestr("|b1") == DType::kBool);
  CHECK(dtype_from_typestr("|u1") == DType::kUInt8);
  CHECK(dtype_from_typestr("<c16") == DType::kComplex128);
  CHECK(!dtype_from_typestr(">f4"));
  CHECK(!dtype_from_typestr("|O"));
  CHECK(!dtype_from_typestr("<U3"));
  CHECK(!dtype_from_typestr("|S4"));
  CHECK(!dtype_from_typestr(""));
}

TEST_CASE("numpy dtype names and typestrs convert both ways as picomap stores them") {
  auto n = [](const char* name) { return numpy_dtype_from_name(name, "x.json"); };
  CHECK(n("float32").typestr == "<f4");
  CHECK(n("uint8").typestr == "|u1");
  CHECK(n("bool").typestr == "|b1");
  CHECK(n("float128").itemsize == 16);
  CHECK(n(">f4").name == ">f4");
  CHECK(n(">f4").itemsize == 4);
  CHECK(n("<U3").itemsize == 12);
  CHECK(n("|S4").itemsize == 4);
  auto t = [](const char* ts) { return numpy_dtype_from_typestr(ts, "x.npy"); };
  CHECK(t("<f4").name == "float32");
  CHECK(t("=i8").name == "int64");
  CHECK(t("<u1").typestr == "|u1");
  CHECK(t(">i8").name == ">i8");
  CHECK_THROWS_WITH(t("|O"), Catch::Contains("object dtype"));
  CHECK_THROWS_WITH(t("<M8[ns]"), Catch::Contains("x.npy: dtype '<M8[ns]'"));
  CHECK_THROWS_WITH(t("<f3"), Catch::Contains("not a float size"));
  CHECK_THROWS_WITH(n("float33"), Catch::Contains("x.json: dtype 'float33' is not a numpy typestr"));
  CHECK_THROWS_AS(n("None"), FormatError);
}
