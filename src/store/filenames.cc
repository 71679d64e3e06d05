#include "filenames.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>

#include "tensorblob/blob_format.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

namespace {

constexpr std::string_view kBlockTag = "7b1b";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

std::string temp_name(std::string_view name) { return std::string(name) + ".tmp." + std::to_string(::getpid()); }

bool is_temp_name(std::string_view name) {
  if (ends_with(name, ".tmp")) return true;
  auto at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at + 5 >= name.size()) return false;
  for (char c : name.substr(at + 5))
    if (c < '0' || c > '9') return false;
  return true;
}

std::string new_block_name() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0) throw_errno("getrandom", "block name");
    got += static_cast<size_t>(n);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13]);
  return std::string(out) + std::string(kBlockTag);
}

bool is_our_block_name(std::string_view n) {
  if (n.size() != 36 || !ends_with(n, kBlockTag)) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? n[i] != '-' : !is_hex(n[i])) return false;
  }
  return n[14] == '4' && (n[19] == '8' || n[19] == '9' || n[19] == 'a' || n[19] == 'b');
}

bool is_valid_block_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  if (name == kConfName || name == kStatName || name == kBlobHashesName || name.starts_with(".stat.tmp") ||
      name.starts_with(".conf.tmp"))
    return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

RaggedPaths ragged_paths_for_base(std::string_view base) {
  RaggedPaths p;
  p.base = std::string(base);
  p.dat = p.base + ".dat";
  p.starts = p.base + ".starts.npy";
  p.json = p.base + ".json";
  p.hashes = p.base + ".hashes.npy";
  p.publish = p.base + ".publish";
  return p;
}

RaggedPaths ragged_paths(std::string_view given) {
  for (std::string_view suffix : {".starts.npy", ".hashes.npy", ".dat", ".json"})
    if (ends_with(given, suffix) && given.size() > suffix.size())
      return ragged_paths_for_base(given.substr(0, given.size() - suffix.size()));
  return ragged_paths_for_base(given);
}

}  // namespace tensorblob
