#include "catalog_fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "log.h"
#include "tensorblob/catalog.h"
#include "tensorblob/error.h"
#include "tensorblob/presentation.h"
#include "tensorblob/tensordb.h"

namespace blobfs {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kRootIno = 1;
constexpr const char* kIndexName = "index.yaml";
constexpr const char* kMetaName = "meta.yaml";

struct stat lstat_or_zero(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) st = {};
  return st;
}

}  // namespace

OpenStore::OpenStore(CatalogFs& catalog, uint64_t dir_ino, std::unique_ptr<Filesystem> fs)
    : catalog_(catalog), dir_ino_(dir_ino), fs_(std::move(fs)), used_(Clock::now()) {}

// The follower goes first: it reads the Filesystem until it has stopped.
OpenStore::~OpenStore() { follower_.reset(); }

uint64_t OpenStore::hand_out(uint64_t local) {
  return local == kRootIno ? dir_ino_ : catalog_.hand_out_file(*this, local);
}

uint64_t OpenStore::shown(uint64_t local) const {
  return local == kRootIno ? dir_ino_ : catalog_.shown_file(*this, local);
}

void OpenStore::take_back(uint64_t kernel) {
  if (kernel != dir_ino_) catalog_.forget(kernel, 1);
}

Invalidation OpenStore::to_kernel(const Invalidation& plan) const {
  Invalidation out;
  std::lock_guard<std::mutex> lock(catalog_.mu_);
  for (const auto& i : plan.inodes) {
    if (i.ino == kRootIno) {
      out.inodes.push_back({dir_ino_, i.offset, i.length});
    } else if (auto it = catalog_.by_local_.find({this, i.ino}); it != catalog_.by_local_.end()) {
      out.inodes.push_back({it->second, i.offset, i.length});
    }
  }
  for (const auto& e : plan.entries)
    if (e.parent == kRootIno) out.entries.push_back({dir_ino_, e.name});
  return out;
}

CatalogFs::CatalogFs(std::string root, const Options& options, tensorblob::StoreOptions store_options, Hooks hooks)
    : root_(std::move(root)), options_(options), store_options_(std::move(store_options)), hooks_(std::move(hooks)) {
  options_.writable = false;
  auto node = std::make_shared<Node>();
  node->ino = kRootIno;
  node->path = root_;
  node->kind = tensorblob::store_kind(root_) == tensorblob::StoreKind::kTensorDB ? Kind::kDbDir : Kind::kDir;
  if (::stat(root_.c_str(), &node->st) != 0) tensorblob::throw_errno("cannot read the directory", root_);
  if (char* real = ::realpath(root_.c_str(), nullptr)) {
    root_real_ = real;
    std::free(real);
  } else {
    tensorblob::throw_errno("cannot read the directory", root_);
  }
  node->made = Clock::now();
  // Readable, or an error naming it, before anything is mounted (without
  // listing it: a root of 10,000 stores mounts as fast as one).
  if (node->kind == Kind::kDir) {
    const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) tensorblob::throw_errno("cannot read the directory", root_);
    ::close(fd);
  } else {
    tensorblob::TensorDB::open(root_, "r");
  }
  slots_[kRootIno] = Slot{node, nullptr, 0, 1};
}

CatalogFs::~CatalogFs() { stop(); }

void CatalogFs::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  // Followers stop before the stores they read go.
  std::vector<std::shared_ptr<OpenStore>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = std::move(open_);
    for (auto& s : closing_) all.push_back(std::move(s));
    closing_.clear();
  }
  for (auto& s : all) s->follower_.reset();
}

void CatalogFs::start() {
  maintenance_ = std::thread([this] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    maintain();
  });
}

double CatalogFs::timeout() const {
  // A live catalog looks again as often as it polls its stores, so stores
  // added, removed or replaced under the root show within that time.
  return options_.live ? options_.refresh_interval : options_.entry_timeout;
}

bool CatalogFs::without_links(const std::string& path) const {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return false;
  const bool same = real == root_real_ + path.substr(root_.size());
  std::free(real);
  return same;
}

bool CatalogFs::stale(Clock::time_point since) const {
  return options_.live && Clock::now() - since >= std::chrono::duration<double>(options_.refresh_interval);
}

std::optional<CatalogFs::Target> CatalogFs::resolve(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(ino);
  if (it == slots_.end()) return std::nullopt;
  if (it->second.store) it->second.store->used_ = Clock::now();
  return Target{it->second.node, it->second.store, it->second.local};
}

std::shared_ptr<OpenStore> CatalogFs::open(Node& dir) {
  auto retry_due = [&] { return stale(dir.tried); };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dir.opened) {
      dir.opened->used_ = Clock::now();
      return dir.opened;
    }
    if (!dir.error.empty() && !retry_due()) return nullptr;
  }
  std::lock_guard<std::mutex> one(dir.open_mu);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dir.opened) return dir.opened;
    if (!dir.error.empty() && !retry_due()) return nullptr;
  }
  std::shared_ptr<OpenStore> store;
  std::string error;
  const bool ragged = dir.store == tensorblob::StoreKind::kRagged;
  if (!without_links(ragged ? dir.path + ".json" : dir.path) || (ragged && !without_links(dir.path + ".dat")))
    return nullptr;  // gone, or now a link: nothing to open (the next lookup drops the name)
  try {
    Options o = options_;
    o.source = dir.path;
    auto s = dir.field.empty() ? tensorblob::open_store(dir.path, store_options_)
                               : tensorblob::open_tensordb_field(dir.db, dir.field, store_options_);
    store = std::make_shared<OpenStore>(*this, dir.ino, std::make_unique<Filesystem>(std::move(s), o));
    if (options_.live && hooks_.follow) store->follower_ = hooks_.follow(store->fs(), *store);
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::lock_guard<std::mutex> lock(mu_);
  dir.tried = Clock::now();
  if (!store) {
    if (error != dir.error) log(LogLevel::kWarning, "damaged store, shown with a meta.yaml saying so: " + error);
    dir.error = error;
    return nullptr;
  }
  dir.error.clear();
  if (!slots_.count(dir.ino)) {  // the kernel forgot the directory meanwhile
    closing_.push_back(store);
  } else {
    dir.opened = store;
    open_.push_back(store);
  }
  wake_.notify_one();
  return store;
}

void CatalogFs::load_db(Node& dir) {
  std::lock_guard<std::mutex> one(dir.open_mu);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dir.loaded && !stale(dir.tried)) return;
  }
  std::vector<std::string> fields;
  std::string error;
  try {
    tensorblob::TensorDB db = tensorblob::TensorDB::open(dir.path, "r");
    for (const auto& f : db.schema()) fields.push_back(f.name);
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!error.empty() && error != dir.error)
    log(LogLevel::kWarning, "damaged TensorDB, shown with a meta.yaml saying so: " + error);
  dir.fields = std::move(fields);
  dir.error = std::move(error);
  dir.loaded = true;
  dir.tried = Clock::now();
}

std::shared_ptr<const std::string> CatalogFs::text_of(Node& dir, const std::string& name) {
  if (dir.kind == Kind::kDir) {
    if (dir.ino != kRootIno || name != kIndexName) return nullptr;
    return std::make_shared<const std::string>(tensorblob::index_yaml(tensorblob::scan_catalog(root_), root_));
  }
  if (name != kMetaName) return nullptr;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    error = dir.error;
  }
  if (!error.empty()) return std::make_shared<const std::string>(tensorblob::damaged_meta_yaml(dir.path, error));
  if (dir.kind != Kind::kDbDir) return nullptr;  // an open store answers its own meta.yaml
  try {
    return std::make_shared<const std::string>(tensorblob::db_meta_yaml(tensorblob::TensorDB::open(dir.path, "r")));
  } catch (const std::exception& e) {
    return std::make_shared<const std::string>(tensorblob::damaged_meta_yaml(dir.path, e.what()));
  }
}

std::shared_ptr<CatalogFs::Node> CatalogFs::make_child(Node& dir, const std::string& name) {
  auto node = std::make_shared<Node>();
  node->parent = dir.ino;
  node->name = name;
  node->path = dir.path + "/" + name;
  node->made = Clock::now();
  if (!without_links(dir.path)) return nullptr;  // the directory itself was swapped for a link
  if (dir.kind == Kind::kDbDir) {
    bool known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = dir.error.empty() && std::find(dir.fields.begin(), dir.fields.end(), name) != dir.fields.end();
    }
    if (!known) return nullptr;
    node->kind = Kind::kStoreDir;
    node->store = tensorblob::StoreKind::kBlob;
    node->db = dir.path;
    node->field = name;
    node->st = lstat_or_zero(node->path);
  } else {
    const tensorblob::StoreKind kind = tensorblob::catalog_kind(dir.path, name);
    switch (kind) {
      case tensorblob::StoreKind::kNone: return nullptr;
      case tensorblob::StoreKind::kDirectory: node->kind = Kind::kDir; break;
      case tensorblob::StoreKind::kTensorDB: node->kind = Kind::kDbDir; break;
      case tensorblob::StoreKind::kBlob:
      case tensorblob::StoreKind::kRagged: node->kind = Kind::kStoreDir; break;
    }
    node->store = kind;
    // A ragged dataset shows as a directory with the times of its .json.
    node->st = lstat_or_zero(kind == tensorblob::StoreKind::kRagged ? node->path + ".json" : node->path);
    // A ragged dataset rewritten in place is the same store (its own
    // refresh follows it); a directory replaced by another is a new one.
    if (kind != tensorblob::StoreKind::kRagged) node->identity = node->st.st_ino;
  }
  return node;
}

std::optional<CatalogFs::Entry> CatalogFs::hand_out_node(const std::shared_ptr<Node>& candidate) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Node> node = candidate;
  const auto key = std::make_pair(candidate->parent, candidate->name);
  if (auto it = by_name_.find(key); it != by_name_.end()) {
    const std::shared_ptr<Node>& old = slots_.at(it->second).node;
    const bool same = old->kind == candidate->kind && old->identity == candidate->identity &&
                      old->store == candidate->store &&
                      (old->kind != Kind::kText || *old->text == *candidate->text);
    if (same) {
      node = old;
      if (node->kind == Kind::kText) node->made = candidate->made;  // checked again just now
      else node->st = candidate->st;
    }
  }
  if (node == candidate) {
    node->ino = next_ino_++;
    slots_[node->ino] = Slot{node, nullptr, 0, 0};
    by_name_[key] = node->ino;
  }
  ++slots_[node->ino].lookups;
  return Entry{node->ino, attributes_locked(*node), timeout()};
}

std::optional<CatalogFs::Entry> CatalogFs::lookup(Node& dir, const std::string& name) {
  if (!tensorblob::is_showable_name(name)) return std::nullopt;
  if (dir.kind == Kind::kDbDir) load_db(dir);
  const bool text_name = (dir.kind == Kind::kDir && dir.ino == kRootIno && name == kIndexName) ||
                         (dir.kind != Kind::kDir && name == kMetaName);
  if (!text_name) {
    if (dir.kind == Kind::kStoreDir) return std::nullopt;  // a damaged store shows only its meta.yaml
    auto node = make_child(dir, name);
    if (!node) return std::nullopt;
    return hand_out_node(node);
  }
  {
    // The text handed out last, while it is recent: no need to make it again.
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_name_.find({dir.ino, name}); it != by_name_.end()) {
      Slot& slot = slots_.at(it->second);
      if (!stale(slot.node->made) && (dir.kind != Kind::kStoreDir || !dir.error.empty())) {
        ++slot.lookups;
        return Entry{slot.node->ino, attributes_locked(*slot.node), timeout()};
      }
    }
  }
  auto text = text_of(dir, name);
  if (!text) return std::nullopt;
  auto node = std::make_shared<Node>();
  node->kind = Kind::kText;
  node->parent = dir.ino;
  node->name = name;
  node->path = dir.path;
  node->text = std::move(text);
  node->made = Clock::now();
  node->st = dir.st;
  return hand_out_node(node);
}

std::vector<std::pair<std::string, bool>> CatalogFs::list(Node& dir, bool fresh) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fresh && Clock::now() - dir.listed < std::chrono::seconds(10)) return dir.listing;
  }
  std::vector<std::pair<std::string, bool>> out;
  if (!without_links(dir.path)) return out;
  if (dir.kind == Kind::kDir) {
    const tensorblob::CatalogListing l = tensorblob::list_catalog_dir(dir.path, dir.path + "/");
    for (const auto& why : l.skipped) log_once(LogLevel::kInfo, "catalog: " + why, "not shown: " + why);
    if (dir.ino == kRootIno) out.emplace_back(kIndexName, false);
    for (const auto& name : l.names) {
      if (dir.ino == kRootIno && name == kIndexName) {
        log_once(LogLevel::kWarning, "catalog index.yaml", root_ + "/index.yaml: not shown, the mount's index has the name");
        continue;
      }
      out.emplace_back(name, true);
    }
  } else {
    if (dir.kind == Kind::kDbDir) load_db(dir);
    out.emplace_back(kMetaName, false);
    std::lock_guard<std::mutex> lock(mu_);
    if (dir.kind == Kind::kDbDir && dir.error.empty())
      for (const auto& f : dir.fields) out.emplace_back(f, true);
  }
  std::lock_guard<std::mutex> lock(mu_);
  dir.listing = out;
  dir.listed = Clock::now();
  return out;
}

uint64_t CatalogFs::hand_out_file(OpenStore& store, uint64_t local) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = by_local_.try_emplace({&store, local}, 0);
  if (added) {
    it->second = next_ino_++;
    slots_[it->second] = Slot{nullptr, store.shared_from_this(), local, 0};
  }
  ++slots_.at(it->second).lookups;
  return it->second;
}

uint64_t CatalogFs::shown_file(const OpenStore& store, uint64_t local) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_local_.find({&store, local});
  return it != by_local_.end() ? it->second : local;
}

void CatalogFs::forget(uint64_t ino, uint64_t n) {
  if (ino == kRootIno) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(ino);
  if (it == slots_.end()) return;
  Slot& slot = it->second;
  if (slot.store) slot.store->fs().nodes().forget(slot.local, n);
  slot.lookups -= std::min(n, slot.lookups);
  if (slot.lookups == 0) drop_slot(ino);
}

void CatalogFs::drop_slot(uint64_t ino) {
  auto it = slots_.find(ino);
  Slot slot = std::move(it->second);
  slots_.erase(it);
  if (slot.store) {
    by_local_.erase({slot.store.get(), slot.local});
    return;
  }
  if (auto named = by_name_.find({slot.node->parent, slot.node->name}); named != by_name_.end() && named->second == ino)
    by_name_.erase(named);
  if (slot.node->opened) {
    // Closed on the maintenance thread: its follower's thread is joined there.
    std::shared_ptr<OpenStore> store = std::move(slot.node->opened);
    open_.erase(std::remove(open_.begin(), open_.end(), store), open_.end());
    closing_.push_back(std::move(store));
    wake_.notify_one();
  }
}

void CatalogFs::maintain() {
  std::map<const OpenStore*, Clock::time_point> asked;  // stores offered back to the kernel, and when
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::seconds(1));
    if (stop_) break;
    // Stores nobody holds any more: destroyed here, outside the lock.
    std::vector<std::shared_ptr<OpenStore>> done;
    for (auto it = closing_.begin(); it != closing_.end();) {
      if (it->use_count() == 1) {
        done.push_back(std::move(*it));
        it = closing_.erase(it);
      } else {
        ++it;
      }
    }
    // Over the bound: offer the least recently used stores back.
    std::vector<std::pair<uint64_t, std::string>> drop;
    const size_t bound = std::max<uint64_t>(1, options_.max_open_stores);
    if (open_.size() > bound && hooks_.drop_entry) {
      std::vector<std::shared_ptr<OpenStore>> by_age = open_;
      std::sort(by_age.begin(), by_age.end(), [](const auto& a, const auto& b) { return a->used_ < b->used_; });
      const auto now = Clock::now();
      for (size_t k = 0; k < by_age.size() - bound; ++k) {
        const OpenStore* s = by_age[k].get();
        if (auto a = asked.find(s); a != asked.end() && now - a->second < std::chrono::seconds(5)) continue;
        asked[s] = now;
        const auto& node = slots_.at(s->dir_ino()).node;
        drop.emplace_back(node->parent, node->name);
      }
    }
    for (auto a = asked.begin(); a != asked.end();) {
      const bool open = std::any_of(open_.begin(), open_.end(), [&](const auto& s) { return s.get() == a->first; });
      a = open ? std::next(a) : asked.erase(a);
    }
    lock.unlock();
    done.clear();
    for (const auto& [parent, name] : drop) hooks_.drop_entry(parent, name);
    lock.lock();
  }
}

struct stat CatalogFs::attributes(const Node& node) const {
  std::lock_guard<std::mutex> lock(mu_);  // a later lookup may update the times shown
  return attributes_locked(node);
}

struct stat CatalogFs::attributes_locked(const Node& node) const {
  struct stat st {};
  st.st_ino = node.ino;
  st.st_uid = options_.uid >= 0 ? static_cast<uid_t>(options_.uid) : ::getuid();
  st.st_gid = options_.gid >= 0 ? static_cast<gid_t>(options_.gid) : ::getgid();
  st.st_atim = node.st.st_atim;
  st.st_mtim = node.st.st_mtim;
  st.st_ctim = node.st.st_ctim;
  st.st_blksize = 4096;
  if (node.kind == Kind::kText) {
    st.st_mode = S_IFREG | options_.file_mode;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(node.text->size());
    st.st_blocks = (st.st_size + 511) / 512;
  } else {
    st.st_mode = S_IFDIR | options_.dir_mode;
    st.st_nlink = 2;
  }
  return st;
}

size_t CatalogFs::stores_open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.size();
}

size_t CatalogFs::numbers_held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
}

}  // namespace blobfs
