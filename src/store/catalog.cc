#include "tensorblob/catalog.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

namespace {


// The entries of a directory, without following anything: name -> d_type
// as lstat says (DT_DIR, DT_REG, DT_LNK, ...).
std::vector<std::pair<std::string, unsigned char>> list_directory(const std::string& dir) {
  std::vector<std::pair<std::string, unsigned char>> out;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_errno("cannot open the directory", dir);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    const int err = errno;
    ::close(fd);
    throw_errno(err, "cannot read the directory", dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {  // some filesystems do not say; ask without following
      struct stat st;
      type = ::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ? DT_UNKNOWN
             : S_ISDIR(st.st_mode)                                   ? DT_DIR
             : S_ISREG(st.st_mode)                                   ? DT_REG
             : S_ISLNK(st.st_mode)                                   ? DT_LNK
                                                                     : DT_UNKNOWN;
    }
    out.emplace_back(std::move(name), type);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

CatalogEntry describe(const std::string& path, std::string name, StoreKind kind) {
  CatalogEntry e;
  e.name = std::move(name);
  e.kind = kind;
  try {
    if (kind == StoreKind::kTensorDB) {
      TensorDB db = TensorDB::open(path, "r");
      e.count = db.size();
      e.fields = db.schema();
      for (const auto& f : db.schema()) e.bytes += static_cast<uint64_t>(db.field(f.name).item_bytes() * db.size());
    } else {
      const DatasetFacts f = open_dataset(path)->facts();
      e.count = f.count;
      e.dtype = f.dtype_name;
      e.shape = f.shape;
      e.bytes = f.total_bytes;
    }
  } catch (const std::exception& ex) {
    e.error = ex.what();
  }
  return e;
}

void walk(const std::string& dir, const std::string& prefix, int depth, int max_depth, Catalog& out) {
  CatalogListing listing;
  try {
    listing = list_catalog_dir(dir, prefix);
  } catch (const Error& e) {
    out.skipped.push_back(e.what());
    return;
  }
  out.skipped.insert(out.skipped.end(), listing.skipped.begin(), listing.skipped.end());
  for (const auto& name : listing.names) {
    const std::string path = dir + "/" + name, shown = prefix + name;
    const StoreKind kind = catalog_kind(dir, name);
    if (kind == StoreKind::kRagged || kind == StoreKind::kBlob || kind == StoreKind::kTensorDB)
      out.stores.push_back(describe(path, shown, kind));
    else if (kind != StoreKind::kDirectory)
      continue;
    else if (depth >= max_depth)
      out.skipped.push_back(shown + ": deeper than " + std::to_string(max_depth) + " directories, not walked");
    else
      walk(path, shown + "/", depth + 1, max_depth, out);
  }
}

}  // namespace

bool is_showable_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/'; });
}

CatalogListing list_catalog_dir(const std::string& dir, const std::string& prefix) {
  const auto entries = list_directory(dir);
  std::set<std::string> dirs, regular;
  for (const auto& [name, type] : entries) (type == DT_DIR ? dirs : regular).insert(name);
  CatalogListing out;
  for (const auto& [name, type] : entries) {
    if (!is_showable_name(name)) {
      out.skipped.push_back(prefix + "(a name with a control character): not a valid name, skipped");
      continue;
    }
    if (type == DT_LNK) {
      out.skipped.push_back(prefix + name + ": a symbolic link, not followed");
      continue;
    }
    if (type == DT_DIR) {
      out.names.push_back(name);
      continue;
    }
    // A ragged dataset is named by its base: BASE.json beside BASE.dat.
    if (type != DT_REG || name.size() <= 5 || !name.ends_with(".json")) continue;
    const std::string base = name.substr(0, name.size() - 5);
    if (!regular.count(base + ".dat")) continue;
    if (dirs.count(base))
      out.skipped.push_back(prefix + base + ": a ragged dataset shadowed by the directory of the same name");
    else
      out.names.push_back(base);
  }
  std::sort(out.names.begin(), out.names.end());
  return out;
}

StoreKind catalog_kind(const std::string& dir, const std::string& name) {
  if (!is_showable_name(name)) return StoreKind::kNone;
  const std::string path = dir + "/" + name;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return StoreKind::kNone;
    const StoreKind kind = store_kind(path);
    return kind == StoreKind::kNone ? StoreKind::kDirectory : kind;
  }
  struct stat json, dat;
  if (::lstat((path + ".json").c_str(), &json) == 0 && S_ISREG(json.st_mode) &&
      ::lstat((path + ".dat").c_str(), &dat) == 0 && S_ISREG(dat.st_mode))
    return StoreKind::kRagged;
  return StoreKind::kNone;
}

Catalog scan_catalog(const std::string& root_in, int max_depth) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  Catalog out;
  list_directory(root);  // the root itself must be readable: errors name it
  walk(root, "", 0, max_depth, out);
  std::sort(out.stores.begin(), out.stores.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::string index_yaml(const Catalog& catalog, const std::string& root) {
  auto kind_name = [](StoreKind k) {
    return k == StoreKind::kTensorDB ? "tensordb" : k == StoreKind::kRagged ? "ragged" : "blob";
  };
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << "tensorblob catalog";
  y << YAML::Key << "root" << YAML::Value << root;
  y << YAML::Key << "stores" << YAML::Value << YAML::BeginMap;
  for (const auto& e : catalog.stores) {
    y << YAML::Key << e.name << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "kind" << YAML::Value << kind_name(e.kind);
    if (!e.error.empty()) {
      y << YAML::Key << "error" << YAML::Value << e.error;
    } else if (e.kind == StoreKind::kTensorDB) {
      y << YAML::Key << "rows" << YAML::Value << e.count;
      y << YAML::Key << "fields" << YAML::Value << YAML::BeginMap;
      for (const auto& f : e.fields) {
        y << YAML::Key << f.name << YAML::Value << YAML::Flow << YAML::BeginMap;
        y << YAML::Key << "dtype" << YAML::Value << f.dtype;
        y << YAML::Key << "shape" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (int64_t d : f.shape) y << d;
        y << YAML::EndSeq << YAML::EndMap;
      }
      y << YAML::EndMap;
      y << YAML::Key << "total_bytes" << YAML::Value << e.bytes;
    } else {
      y << YAML::Key << "count" << YAML::Value << e.count;
      y << YAML::Key << "dtype" << YAML::Value << e.dtype;
      y << YAML::Key << (e.kind == StoreKind::kRagged ? "trail_shape" : "shape") << YAML::Value << YAML::Flow
        << YAML::BeginSeq;
      for (int64_t d : e.shape) y << d;
      y << YAML::EndSeq;
      y << YAML::Key << "total_bytes" << YAML::Value << e.bytes;
    }
    y << YAML::EndMap;
  }
  y << YAML::EndMap;
  if (!catalog.skipped.empty()) {
    y << YAML::Key << "skipped" << YAML::Value << YAML::BeginSeq;
    for (const auto& s : catalog.skipped) y << s;
    y << YAML::EndSeq;
  }
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace tensorblob
