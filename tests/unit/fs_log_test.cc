#include <catch2/catch.hpp>

#include "log.h"

using blobfs::escape_for_log;

TEST_CASE("log lines escape control bytes, so a path cannot forge a second event") {
  CHECK(escape_for_log("/data/emb/000001.bin") == "/data/emb/000001.bin");
  CHECK(escape_for_log("/tmp/a\nblobfs: error: forged") == "/tmp/a\\nblobfs: error: forged");
  CHECK(escape_for_log("tab\there\r") == "tab\\there\\r");
  CHECK(escape_for_log(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(escape_for_log("bell\x07 del\x7f") == "bell\\x07 del\\x7f");
  CHECK(escape_for_log("back\\slash") == "back\\\\slash");
  // UTF-8 passes through untouched.
  CHECK(escape_for_log("d\xc3\xa9j\xc3\xa0") == "d\xc3\xa9j\xc3\xa0");
}
