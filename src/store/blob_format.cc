#include "tensorblob/blob_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "json_util.h"
#include "tensorblob/error.h"
#include "tensorblob/tensordb.h"

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

namespace {

json notes_object(const char* short_name, const char* qualified, ConfFlavor flavor) {
  return {{"args", json::array()},
          {"class_name", flavor == ConfFlavor::kShort ? short_name : qualified},
          {"kwargs", json::object()},
          {"using_default_values", json::array()}};
}

json shape_json(const Shape& shape) {
  json out = json::array();
  for (int64_t d : shape) out.push_back(d);
  return out;
}

Shape shape_from_json(const json& v, std::string_view path, const char* key) {
  Shape shape;
  if (v.is_number_integer()) {
    shape.push_back(get_int(v, path, key));  // tensorblob turns a bare int into (n,)
  } else if (v.is_array()) {
    for (const auto& d : v) shape.push_back(get_int(d, path, key));
  } else {
    throw FormatError(prefix(path) + "'" + key + "' must be a list of integers");
  }
  return shape;
}

const std::set<std::string>& bookkeeping_keys() {
  static const std::set<std::string> keys = {"__notes__", "_class_name", "_use_default_values", "_var_keyword",
                                             "_var_positional"};
  return keys;
}

}  // namespace

BlobConf parse_blob_conf(std::string_view text, std::string_view path) {
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  std::string cls = class_name_of(obj, path);
  if (cls == "TensorDB")
    throw FormatError(prefix(path) + "is a TensorDB config; open one of its field directories instead");
  if (cls != "TensorBlob") throw FormatError(prefix(path) + "is a config for '" + cls + "', not TensorBlob");

  for (const auto& [key, value] : obj.items()) {
    if (bookkeeping_keys().count(key) || key == "dtype" || key == "shape" || key == "block_size") continue;
    throw FormatError(prefix(path) + "unknown key '" + key + "'");
  }
  for (const char* key : {"dtype", "shape", "block_size"})
    if (!obj.contains(key)) throw FormatError(prefix(path) + "missing key '" + key + "'");

  if (!obj["dtype"].is_string()) throw FormatError(prefix(path) + "'dtype' must be a string");
  Shape shape = shape_from_json(obj["shape"], path, "shape");
  return make_blob_conf(path, obj["dtype"].get<std::string>(), std::move(shape),
                        get_int(obj["block_size"], path, "block_size"));
}

std::string format_blob_conf(const BlobConf& conf, ConfFlavor flavor) {
  // nlohmann's default object is a std::map: keys sorted by bytes, as orjson's
  // OPT_SORT_KEYS; dump(2) matches OPT_INDENT_2 including "[]" and "{}".
  json obj = {{"__notes__", notes_object("TensorBlob", "tensorblob._blob.TensorBlob", flavor)},
              {"block_size", conf.block_size},
              {"dtype", std::string(dtype_info(conf.dtype).name)},
              {"shape", shape_json(conf.shape)}};
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

bool is_valid_field_name(std::string_view name) {
  return !name.empty() && name.size() <= 255 && name[0] != '.' && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

DBConf parse_db_conf(std::string_view text, std::string_view path) {
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  std::string cls = class_name_of(obj, path);
  if (cls == "TensorBlob") throw FormatError(prefix(path) + "is a TensorBlob config, not a TensorDB");
  if (cls != "TensorDB") throw FormatError(prefix(path) + "is a config for '" + cls + "', not TensorDB");
  for (const char* key : {"schema", "block_size"})
    if (!obj.contains(key)) throw FormatError(prefix(path) + "missing key '" + key + "' of a TensorDB config");
  for (const auto& [key, value] : obj.items()) {
    if (bookkeeping_keys().count(key) || key == "schema" || key == "block_size") continue;
    throw FormatError(prefix(path) + "unknown key '" + key + "' in a TensorDB config");
  }
  DBConf conf;
  conf.block_size = get_int(obj["block_size"], path, "block_size");
  if (conf.block_size < 1)
    throw FormatError(prefix(path) + "block_size must be at least 1, got " + std::to_string(conf.block_size));
  const json& schema = obj["schema"];
  if (!schema.is_object() || schema.empty()) throw FormatError(prefix(path) + "'schema' must be a non-empty object");
  for (const auto& [name, spec] : schema.items()) {
    const std::string where = std::string(path) + ": field " + json(name).dump();
    if (!is_valid_field_name(name)) throw FormatError(where + " is not a valid field name");
    if (!spec.is_array() || spec.size() != 2 || !spec[0].is_string())
      throw FormatError(where + " must be [dtype, [dims...]]");
    FieldSpec f{name, spec[0].get<std::string>(), shape_from_json(spec[1], path, "schema")};
    make_blob_conf(where, f.dtype, f.shape, conf.block_size);  // the same checks a field's blob gets
    conf.schema.push_back(std::move(f));
  }
  return conf;  // nlohmann's object keeps keys sorted: the schema is in name order
}

std::string format_db_conf(const DBConf& conf, ConfFlavor flavor) {
  json schema = json::object();
  for (const auto& f : conf.schema)
    schema[f.name] = json::array({std::string(dtype_info(parse_dtype(f.dtype)).name), shape_json(f.shape)});
  json obj = {{"__notes__", notes_object("TensorDB", "tensorblob._db.TensorDB", flavor)},
              {"block_size", conf.block_size},
              {"schema", schema}};
  return obj.dump(2) + "\n";
}

int64_t parse_db_status(std::string_view text, std::string_view path) {
  json obj = parse_json(text, path);
  if (!obj.is_object()) throw FormatError(prefix(path) + "must be a JSON object");
  for (const auto& [key, value] : obj.items())
    if (key != "len") throw FormatError(prefix(path) + "unknown key '" + key + "' in a TensorDB status");
  if (!obj.contains("len")) throw FormatError(prefix(path) + "missing key 'len'");
  const int64_t len = get_int(obj["len"], path, "len");
  if (len < 0) throw FormatError(prefix(path) + "'len' is negative: " + std::to_string(len));
  return len;
}

std::string format_db_status(int64_t len) { return "{\"len\":" + std::to_string(len) + "}"; }

}  // namespace tensorblob
