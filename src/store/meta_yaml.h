// Pieces of the meta.yaml document that every kind of dataset shares.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "tensorblob/dataset.h"

namespace tensorblob {

// What `npy:` says: "yes", or why there are no .npy views.
std::string npy_status(const NamingRules& naming, const std::string& descr, const std::string& dtype_name);

// The `naming:` map: width, how names are spelled, first and last names.
void emit_naming(YAML::Emitter& y, const NamingRules& naming, int64_t count, bool npy, const char* item_word);

}  // namespace tensorblob
