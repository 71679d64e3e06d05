// libFuzzer target: the blobfs YAML config and -o option lists.
#include <string>

#include "fuzz_util.h"
#include "options.h"

FUZZ_TARGET(text) {
  blobfs::Options o;
  try {
    blobfs::apply_config_yaml(o, std::string(text), "fuzz.yaml");
  } catch (const blobfs::OptionError&) {
  }
  try {
    blobfs::apply_mount_options(o, text);
  } catch (const blobfs::OptionError&) {
  }
  if (o.threads < 1 || o.naming_width < 1 || o.naming_width > 19) __builtin_trap();
}
