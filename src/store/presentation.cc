#include "tensorblob/presentation.h"

#include <yaml-cpp/yaml.h>

namespace tensorblob {

std::string index_name(int64_t i, int width) {
  std::string digits = std::to_string(i);
  if (digits.size() < static_cast<size_t>(width)) digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
  return digits;
}

namespace {

// What `npy:` says: "yes", or why there are no .npy views.
std::string npy_status(const NamingRules& naming, const DatasetFacts& f) {
  if (!naming.npy) return "no: turned off in the config";
  if (f.typestr.empty()) return "no: numpy has no dtype " + f.dtype_name;
  return "yes";
}

// The `naming:` map: width, how names are spelled, first and last names.
void emit_naming(YAML::Emitter& y, const NamingRules& naming, int64_t count, bool npy, const std::string& word) {
  y << YAML::Key << "naming" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "width" << YAML::Value << naming.width;
  y << YAML::Key << word << YAML::Value
    << "NNNNNN.bin is " + word + " NNNNNN, zero-padded to width digits (wider indices in full)" +
           std::string(npy ? "; NNNNNN.npy the same with a .npy header, found by name" : "");
  if (naming.ranges)
    y << YAML::Key << "range" << YAML::Value
      << "A-B.bin" + std::string(npy ? " and A-B.npy" : "") + ": " + word +
             "s A to B-1 concatenated (half-open, 0 <= A <= B <= count), found by name";
  y << YAML::Key << "all" << YAML::Value
    << "all.bin: every " + word + " in order" + std::string(npy ? "; all.npy: the same with a .npy header" : "");
  y << YAML::Key << "canonical" << YAML::Value << "only the spelling above exists; 123.bin, +00123.bin are not found";
  if (count > 0) {
    y << YAML::Key << "first" << YAML::Value << index_name(0, naming.width) + ".bin";
    y << YAML::Key << "last" << YAML::Value << index_name(count - 1, naming.width) + ".bin";
  }
  y << YAML::EndMap;
}

void emit_shape(YAML::Emitter& y, const char* key, const Shape& shape) {
  y << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (int64_t d : shape) y << d;
  y << YAML::EndSeq;
}

}  // namespace

std::string meta_yaml(const Dataset& dataset, const NamingRules& naming) {
  const DatasetFacts f = dataset.facts();
  const bool npy = naming.npy && !f.typestr.empty();
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << f.format;
  y << YAML::Key << "source" << YAML::Value << f.source;
  y << YAML::Key << "dtype" << YAML::Value << f.dtype_name;
  if (f.ragged) {
    if (!f.typestr.empty()) y << YAML::Key << "typestr" << YAML::Value << f.typestr;
    emit_shape(y, "trail_shape", f.shape);
    y << YAML::Key << "item_shape" << YAML::Value << "(n_i, *trail_shape), n_i >= 1 rows per item";
    y << YAML::Key << "count" << YAML::Value << f.count;
    y << YAML::Key << "total_rows" << YAML::Value << f.total_rows;
    y << YAML::Key << "row_bytes" << YAML::Value << f.row_bytes;
    y << YAML::Key << "total_bytes" << YAML::Value << f.total_bytes;
    y << YAML::Key << "hash" << YAML::Value << f.content_hash;
    y << YAML::Key << "item_hashes" << YAML::Value << f.item_hashes;
  } else {
    emit_shape(y, "shape", f.shape);
    y << YAML::Key << "item_bytes" << YAML::Value << f.item_bytes;
    y << YAML::Key << "count" << YAML::Value << f.count;
    y << YAML::Key << "total_bytes" << YAML::Value << f.total_bytes;
    y << YAML::Key << "block_size" << YAML::Value << f.block_size;
    y << YAML::Key << "blocks" << YAML::Value << f.blocks;
    y << YAML::Key << "hash" << YAML::Value << f.item_hashes;
  }
  y << YAML::Key << "npy" << YAML::Value << npy_status(naming, f);
  emit_naming(y, naming, f.count, npy, f.ragged ? "item" : "tensor");
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

std::string db_meta_yaml(const TensorDB& db) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << "tensordb";
  y << YAML::Key << "source" << YAML::Value << db.path();
  y << YAML::Key << "rows" << YAML::Value << db.size();
  y << YAML::Key << "block_size" << YAML::Value << db.conf().block_size;
  y << YAML::Key << "fields" << YAML::Value << YAML::BeginMap;
  for (const auto& f : db.schema()) {
    const Blob& b = db.field(f.name);
    y << YAML::Key << f.name << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "dtype" << YAML::Value << std::string(dtype_info(b.dtype()).name);
    emit_shape(y, "shape", b.shape());
    y << YAML::Key << "item_bytes" << YAML::Value << b.item_bytes();
    y << YAML::Key << "total_bytes" << YAML::Value << b.item_bytes() * db.size();
    y << YAML::EndMap;
  }
  y << YAML::EndMap;
  y << YAML::Key << "rows_rule" << YAML::Value
    << "rows = min(the database's .stat, every field's count), as tensorblob computes it";
  if (!db.warnings().empty()) {
    y << YAML::Key << "warnings" << YAML::Value << YAML::BeginSeq;
    for (const auto& w : db.warnings()) y << w;
    y << YAML::EndSeq;
  }
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

std::string damaged_meta_yaml(const std::string& source, const std::string& error) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << "damaged";
  y << YAML::Key << "source" << YAML::Value << source;
  y << YAML::Key << "error" << YAML::Value << error;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace tensorblob
