#include "tensorblob/blob_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "json_util.h"
#include "tensorblob/error.h"

namespace tensorblob {

namespace {

using nlohmann::json;

std::string prefix(std::string_view path) { return std::string(path) + ": "; }

int64_t get_int(const json& v, std::string_view path, const char* key) {
  if (!v.is_number_integer())
    throw FormatError(prefix(path) + "'" + key + "' must be an integer, got " + describe_json(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw FormatError(prefix(path) + "'" + key + "' is too large: " + describe_json(v));
  return v.get<int64_t>();
}

// The class name the config library recorded; the short and the qualified
// spelling both end in the class itself (src/store/FORMATS.md 3.3).
std::string class_name_of(const json& obj, std::string_view path) {
  const json* name = nullptr;
  if (obj.contains("__notes__")) {
    const json& notes = obj["__notes__"];
    if (!notes.is_object() || !notes.contains("class_name"))
      throw FormatError(prefix(path) + "'__notes__' has no 'class_name'");
    name = &notes["class_name"];
  } else if (obj.contains("_class_name")) {
    name = &obj["_class_name"];  // the pre-0.1.1rc2 layout
  } else {
    throw FormatError(prefix(path) + "not a tensorblob config: no '__notes__.class_name'");
  }
  if (!name->is_string()) throw FormatError(prefix(path) + "'class_name' must be a string");
  std::string s = name->get<std::string>();
  auto dot = s.rfind('.');
  return dot == std::string::npos ? s : s.substr(dot + 1);
}

}  // namespace

BlobConf make_blob_conf(std::string_view where, std::string dtype_name, Shape shape, int64_t block_size) {
  BlobConf c;
  try {
    c.dtype = parse_dtype(dtype_name);
  } catch (const FormatError& e) {
    throw FormatError(prefix(where) + e.what());
  }
  c.dtype_name = std::move(dtype_name);
  c.shape = std::move(shape);
  c.block_size = block_size;
  if (block_size < 1)
    throw FormatError(prefix(where) + "block_size must be at least 1, got " + std::to_string(block_size));
  for (int64_t d : c.shape)
    if (d < 1)
      throw FormatError(prefix(where) + "shape " + shape_to_string(c.shape) +
                        " has a dimension below 1 (tensorblob cannot store empty tensors)");
  try {
    c.item_bytes = item_bytes(c.dtype, c.shape);
    c.block_bytes = checked_mul(c.block_size, c.item_bytes, "block_size × item bytes");
  } catch (const Error& e) {
    throw FormatError(prefix(where) + e.what());
  }
  return c;
}

BlobConf parse_blob_conf(std::string_view text, std::string_view path) {
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  std::string cls = class_name_of(obj, path);
  if (cls == "TensorDB")
    throw FormatError(prefix(path) + "is a TensorDB config; open one of its field directories instead");
  if (cls != "TensorBlob") throw FormatError(prefix(path) + "is a config for '" + cls + "', not TensorBlob");

  static const std::set<std::string> kBookkeeping = {"__notes__", "_class_name", "_use_default_values",
                                                     "_var_keyword", "_var_positional"};
  for (const auto& [key, value] : obj.items()) {
    if (kBookkeeping.count(key) || key == "dtype" || key == "shape" || key == "block_size") continue;
    throw FormatError(prefix(path) + "unknown key '" + key + "'");
  }
  for (const char* key : {"dtype", "shape", "block_size"})
    if (!obj.contains(key)) throw FormatError(prefix(path) + "missing key '" + key + "'");

  if (!obj["dtype"].is_string()) throw FormatError(prefix(path) + "'dtype' must be a string");
  const json& jshape = obj["shape"];
  Shape shape;
  if (jshape.is_number_integer()) {
    shape.push_back(get_int(jshape, path, "shape"));  // tensorblob turns a bare int into (n,)
  } else if (jshape.is_array()) {
    for (const auto& d : jshape) shape.push_back(get_int(d, path, "shape"));
  } else {
    throw FormatError(prefix(path) + "'shape' must be a list of integers");
  }
  return make_blob_conf(path, obj["dtype"].get<std::string>(), std::move(shape),
                        get_int(obj["block_size"], path, "block_size"));
}

std::string format_blob_conf(const BlobConf& conf, ConfFlavor flavor) {
  // nlohmann's default object is a std::map: keys sorted by bytes, as orjson's
  // OPT_SORT_KEYS; dump(2) matches OPT_INDENT_2 including "[]" and "{}".
  json notes = {{"args", json::array()},
                {"class_name", flavor == ConfFlavor::kShort ? "TensorBlob" : "tensorblob._blob.TensorBlob"},
                {"kwargs", json::object()},
                {"using_default_values", json::array()}};
  json shape = json::array();
  for (int64_t d : conf.shape) shape.push_back(d);
  json obj = {{"__notes__", notes},
              {"block_size", conf.block_size},
              {"dtype", std::string(dtype_info(conf.dtype).name)},
              {"shape", shape}};
  return obj.dump(2) + "\n";
}

BlobStatus parse_blob_status(std::string_view text, std::string_view path) {
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  BlobStatus st;
  for (const auto& [key, value] : obj.items()) {
    if (key == "len") {
      st.len = get_int(value, path, "len");
      if (st.len < 0) throw FormatError(prefix(path) + "'len' is negative: " + std::to_string(st.len));
    } else if (key == "bds") {
      if (!value.is_array()) throw FormatError(prefix(path) + "'bds' must be a list of block file names");
      std::set<std::string_view> seen;
      st.blocks.reserve(value.size());
      for (const auto& b : value) {
        if (!b.is_string()) throw FormatError(prefix(path) + "'bds' entry is not a string: " + describe_json(b));
        st.blocks.push_back(b.get<std::string>());
      }
      for (const auto& name : st.blocks) {
        if (!is_valid_block_name(name))
          throw FormatError(prefix(path) + "block name " + json(name).dump() +
                            " is not a plain file name in the blob directory");
        if (!seen.insert(name).second)
          throw FormatError(prefix(path) + "block " + json(name).dump() + " is listed twice");
      }
    } else {
      throw FormatError(prefix(path) + "unknown key '" + key + "'");
    }
  }
  return st;
}

std::string format_blob_status(const BlobStatus& status) {
  nlohmann::ordered_json obj;
  obj["len"] = status.len;
  obj["bds"] = status.blocks;
  return obj.dump();
}

}  // namespace tensorblob
