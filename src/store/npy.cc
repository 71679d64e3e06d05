#include "tensorblob/npy.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "tensorblob/error.h"

namespace tensorblob {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;          // numpy's ARRAY_ALIGN
constexpr size_t kGrowthDigits = 21;   // numpy's GROWTH_AXIS_MAX_DIGITS

std::string py_shape_repr(const Shape& shape) { return shape_to_string(shape); }

// A tiny reader for the one Python literal numpy writes: a dict of 'descr'
// (a string), 'fortran_order' (True/False) and 'shape' (a tuple of ints).
class LiteralReader {
 public:
  LiteralReader(std::string_view text, std::string_view path) : s_(text), path_(path) {}

  NpyHeader read_dict() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = read_string();
      expect(':');
      if (key == "descr") {
        skip_space();
        if (peek() == '[') fail("structured dtypes (a list 'descr') are not supported");
        h.descr = read_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = read_bool();
        have_order = true;
      } else if (key == "shape") {
        h.shape = read_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "' in the header");
      }
      skip_space();
      if (peek() == ',') ++pos_;
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("text after the header dictionary");
    if (!have_descr || !have_order || !have_shape) fail("header lacks 'descr', 'fortran_order' or 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw FormatError(std::string(path_) + ": npy header: " + why); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "' at byte " + std::to_string(pos_));
    ++pos_;
  }
  std::string read_string() {
    skip_space();
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string at byte " + std::to_string(pos_));
    size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    if (out.find('\\') != std::string::npos) fail("escapes in header strings are not supported");
    pos_ = end + 1;
    return out;
  }
  bool read_bool() {
    skip_space();
    if (s_.substr(pos_, 4) == "True") return pos_ += 4, true;
    if (s_.substr(pos_, 5) == "False") return pos_ += 5, false;
    fail("'fortran_order' must be True or False");
  }
  Shape read_tuple() {
    expect('(');
    Shape out;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape entries must be non-negative integers");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, peek() - '0', &v))
          fail("shape entry overflows 64 bits");
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 longs, still found in old files
      out.push_back(v);
      if (out.size() > 64) fail("more than 64 dimensions");
      skip_space();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("malformed shape tuple");
    }
    ++pos_;
    return out;
  }

  std::string_view s_;
  std::string_view path_;
  size_t pos_ = 0;
};

uint32_t read_le(std::string_view b, size_t off, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(b[off + i])) << (8 * i);
  return v;
}

}  // namespace

std::string npy_header(std::string_view descr, const Shape& shape) {
  std::string dict = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " +
                     py_shape_repr(shape) + ", }";
  // numpy leaves room to grow the first axis in place (since numpy 1.23 / 2.x).
  if (!shape.empty()) {
    size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthDigits) dict.append(kGrowthDigits - digits, ' ');
  }
  // Version 1.0 has a 2-byte length; numpy moves to 2.0 only when it overflows.
  size_t hlen = dict.size() + 1;
  int major = 1;
  size_t prefix = kMagicLen + 2 + 2;
  size_t pad = kAlign - ((prefix + hlen) % kAlign);  // numpy pads a full 64 when already aligned
  if (hlen + pad > 65535) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
    pad = kAlign - ((prefix + hlen) % kAlign);
  }
  size_t total = hlen + pad;
  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) out.push_back(static_cast<char>((total >> (8 * i)) & 0xff));
  out += dict;
  out.append(pad, ' ');
  out.push_back('\n');
  return out;
}

std::optional<size_t> npy_header_length(std::string_view prefix, std::string_view path) {
  if (prefix.size() < 8) return std::nullopt;
  if (prefix.substr(0, kMagicLen) != std::string_view(kMagic, kMagicLen))
    throw FormatError(std::string(path) + ": not a .npy file (no \\x93NUMPY magic)");
  int major = static_cast<unsigned char>(prefix[6]);
  if (major < 1 || major > 3 || prefix[7] != 0)
    throw FormatError(std::string(path) + ": unsupported .npy format version " + std::to_string(major) + "." +
                      std::to_string(static_cast<unsigned char>(prefix[7])));
  size_t len_bytes = major == 1 ? 2 : 4;
  if (prefix.size() < 8 + len_bytes) return std::nullopt;
  return 8 + len_bytes + read_le(prefix, 8, len_bytes);
}

NpyHeader parse_npy_header(std::string_view bytes, std::string_view path) {
  auto total = npy_header_length(bytes, path);
  if (!total) throw FormatError(std::string(path) + ": file too short for a .npy header");
  if (bytes.size() < *total)
    throw FormatError(std::string(path) + ": .npy header claims " + std::to_string(*total) +
                      " bytes but the file has " + std::to_string(bytes.size()));
  int major = static_cast<unsigned char>(bytes[6]);
  size_t start = major == 1 ? 10 : 12;
  std::string_view dict = bytes.substr(start, *total - start);
  if (dict.find('\0') != std::string_view::npos) throw FormatError(std::string(path) + ": npy header: NUL byte in header");
  NpyHeader h = LiteralReader(dict, path).read_dict();
  h.data_offset = *total;
  h.major_version = major;
  return h;
}

std::optional<DType> dtype_from_typestr(std::string_view typestr) {
  if (typestr.size() < 2) return std::nullopt;
  const char order = typestr[0];
  for (const auto& info : all_dtypes()) {
    if (info.typestr.empty() || typestr.substr(1) != info.typestr.substr(1)) continue;
    if (info.typestr[0] == '|') return std::string_view("|<>=").find(order) != std::string_view::npos
                                           ? std::optional<DType>(info.dtype) : std::nullopt;
    // Blocks hold little-endian elements; '=' (native) is little-endian on every supported machine.
    return (order == '<' || order == '=') ? std::optional<DType>(info.dtype) : std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tensorblob

namespace tensorblob {

namespace {

struct Word {
  std::string_view name, typestr;
};
// numpy's words for little-endian (native here) and byte-order-free dtypes.
constexpr Word kWords[] = {
    {"float16", "<f2"},   {"float32", "<f4"},    {"float64", "<f8"},     {"float128", "<f16"},
    {"complex64", "<c8"}, {"complex128", "<c16"}, {"complex256", "<c32"}, {"int8", "|i1"},
    {"uint8", "|u1"},     {"int16", "<i2"},      {"uint16", "<u2"},      {"int32", "<i4"},
    {"uint32", "<u4"},    {"int64", "<i8"},      {"uint64", "<u8"},      {"bool", "|b1"},
};

}  // namespace

NumpyDType numpy_dtype_from_typestr(std::string_view t, std::string_view where) {
  auto bad = [&](const std::string& why) -> NumpyDType {
    throw FormatError(std::string(where) + ": dtype '" + std::string(t) + "' " + why);
  };
  if (t.size() < 2 || std::string_view("<>|=").find(t[0]) == std::string_view::npos)
    return bad("is not a numpy typestr");
  char kind = t[1];
  if (kind == 'O') return bad("is an object dtype, which has no fixed bytes to store");
  std::string_view digits = t.substr(2);
  size_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || n == 0 || n > (1u << 20))
    return bad("has no valid size");
  size_t itemsize = n;
  switch (kind) {
    case 'f': if (n != 2 && n != 4 && n != 8 && n != 16) return bad("is not a float size"); break;
    case 'i': case 'u': if (n != 1 && n != 2 && n != 4 && n != 8) return bad("is not an integer size"); break;
    case 'c': if (n != 8 && n != 16 && n != 32) return bad("is not a complex size"); break;
    case 'b': if (n != 1) return bad("is not a bool size"); break;
    case 'U': itemsize = 4 * n; break;
    case 'S': break;
    case 'O': return bad("is an object dtype, which has no fixed bytes to store");
    default: return bad("is not supported (only numbers, bool, and fixed-size strings)");
  }
  // Canonical spelling: '=' is little-endian here; one-byte types have no order.
  char order = t[0] == '=' ? '<' : t[0];
  if (itemsize == 1 && kind != 'U') order = '|';
  else if (order == '|') order = '<';
  NumpyDType d;
  d.typestr = std::string(1, order) + kind + std::string(digits);
  d.itemsize = itemsize;
  d.name = d.typestr;
  for (const auto& w : kWords)
    if (w.typestr == d.typestr) d.name = std::string(w.name);
  return d;
}

NumpyDType numpy_dtype_from_name(std::string_view name, std::string_view where) {
  for (const auto& w : kWords)
    if (w.name == name) return numpy_dtype_from_typestr(w.typestr, where);
  return numpy_dtype_from_typestr(name, where);
}

}  // namespace tensorblob
