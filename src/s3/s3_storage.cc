#include "s3_storage.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "read_ahead.h"

namespace tensorblob {

bool is_s3_url(std::string_view path) { return path.substr(0, 5) == "s3://"; }

namespace s3 {

namespace {

FileInfo file_info(const ObjectInfo& o) {
  FileInfo f;
  f.size = o.size;
  f.mtime_ns = o.mtime_ns;
  f.etag = o.etag;
  return f;
}

[[noreturn]] void read_only(const std::string& what) {
  throw Error(Errc::kNotPermitted,
              what + ": a store on object storage is read-only here; change a local copy and publish it with "
                     "`tblob push`",
              EROFS);
}

// One block object, read in parts. The version read is the ETag it was
// opened at until the object is replaced.
class S3File final : public ReadableFile {
 public:
  S3File(std::shared_ptr<S3Context> ctx, std::string bucket, std::string key, ObjectInfo info)
      : ctx_(std::move(ctx)),
        bucket_(std::move(bucket)),
        key_(std::move(key)),
        path_(S3Client::url_of(bucket_, key_)),
        info_(std::move(info)),
        ahead_(1 << 20, ctx_->options.prefetch_max_bytes) {}

  const std::string& path() const override { return path_; }
  uint64_t size() const override { return info_.size; }

  void read(uint64_t offset, size_t n, void* dst) const override {
    if (n == 0) return;
    check_range(offset, n);
    const uint64_t pb = ctx_->options.part_bytes;
    schedule_ahead(offset, n);
    const PartSpan span = parts_covering(offset, n, pb, info_.size);
    // Parts past the first are started in the background, so a read over
    // several parts has them in flight at once.
    for (uint64_t p = span.first + 1; p < span.last; ++p) prefetch_part(p);
    auto* out = static_cast<std::byte*>(dst);
    for (uint64_t p = span.first; p < span.last; ++p) {
      Part part = get_part(p);
      const uint64_t start = p * pb;
      const uint64_t from = std::max(offset, start), to = std::min(offset + n, start + part->size());
      std::memcpy(out + (from - offset), part->data() + (from - start), to - from);
    }
  }

  ByteView view(uint64_t offset, size_t n) const override {
    check_range(offset, n);
    const uint64_t pb = ctx_->options.part_bytes;
    const PartSpan span = parts_covering(offset, n, pb, info_.size);
    if (n > 0 && span.last == span.first + 1) {
      schedule_ahead(offset, n);
      Part part = get_part(span.first);  // within one part: no copy
      return ByteView{part, part->data() + (offset - span.first * pb), n};
    }
    auto copy = std::make_shared<Bytes>(n);
    read(offset, n, copy->data());
    return ByteView{copy, copy->data(), n};
  }

  uint64_t read_ahead(uint64_t end) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return ahead_.window_at(end);
  }

  void continue_read_ahead(uint64_t n) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ahead_.seed(0, n);
    }
    const PartSpan span = parts_covering(0, n, ctx_->options.part_bytes, info_.size);
    for (uint64_t p = span.first; p < span.last; ++p) prefetch_part(p);
  }

  const std::byte* mapped() const override { return nullptr; }
  bool reaches(uint64_t end) const override { return end <= info_.size; }
  FileInfo info() const override {
    std::lock_guard<std::mutex> lock(mu_);
    FileInfo f = file_info(info_);
    f.etag = etag_now_;
    return f;
  }

 private:
  void check_range(uint64_t offset, size_t n) const {
    if (offset > info_.size || n > info_.size - offset)
      throw Error(Errc::kIo,
                  path_ + ": read of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                      " past the end of the " + std::to_string(info_.size) + "-byte object",
                  ENODATA);
  }

  std::string etag() const {
    std::lock_guard<std::mutex> lock(mu_);
    return etag_now_;
  }

  std::string part_key(const std::string& etag, uint64_t p) const {
    return ctx_->endpoint_id + "\n" + bucket_ + "\n" + key_ + "\n" + etag + "\n" +
           std::to_string(ctx_->options.part_bytes) + "\n" + std::to_string(p);
  }

  FetchPart fetcher(const std::string& etag, uint64_t p) const {
    auto ctx = ctx_;
    const uint64_t offset = p * ctx_->options.part_bytes;
    return [ctx, bucket = bucket_, key = key_, etag, offset](std::byte* dst, size_t size) {
      ctx->client->get_range(bucket, key, offset, size, dst, etag);
    };
  }

  void prefetch_part(uint64_t p) const {
    const std::string e = etag();
    ctx_->parts->prefetch(part_key(e, p), part_size(p, ctx_->options.part_bytes, info_.size), fetcher(e, p));
  }

  Part get_part(uint64_t p) const {
    const size_t size = part_size(p, ctx_->options.part_bytes, info_.size);
    for (int attempt = 0;; ++attempt) {
      const std::string e = etag();
      try {
        return ctx_->parts->get(part_key(e, p), size, fetcher(e, p));
      } catch (const ObjectChanged&) {
        if (attempt >= 2) throw;
        follow_new_version(e);
      }
    }
  }

  // The object was replaced: read the new version if it is still an object
  // of the same size (a block rewritten where it stands), else the file is
  // gone for this reader.
  void follow_new_version(const std::string& old_etag) const {
    auto now = ctx_->client->head(bucket_, key_);
    if (!now) throw Error(Errc::kNotFound, path_ + ": the object was removed while open", ENOENT);
    if (now->size != info_.size)
      throw Error(Errc::kNotFound,
                  path_ + ": the object was replaced by one of " + std::to_string(now->size) + " bytes while open",
                  ENOENT);
    std::lock_guard<std::mutex> lock(mu_);
    if (etag_now_ == old_etag) etag_now_ = now->etag;
  }

  void schedule_ahead(uint64_t offset, size_t n) const {
    uint64_t window;
    {
      std::lock_guard<std::mutex> lock(mu_);
      window = ahead_.on_read(offset, n);
    }
    if (window == 0 || offset + n >= info_.size) return;
    const PartSpan span = parts_covering(offset + n, window, ctx_->options.part_bytes, info_.size);
    for (uint64_t p = span.first; p < span.last; ++p) prefetch_part(p);
  }

  std::shared_ptr<S3Context> ctx_;
  std::string bucket_, key_, path_;
  ObjectInfo info_;
  mutable std::mutex mu_;
  mutable std::string etag_now_ = info_.etag;
  mutable ReadAhead ahead_;
};

class S3Storage final : public Storage {
 public:
  S3Storage(std::shared_ptr<S3Context> ctx, S3Url url)
      : ctx_(std::move(ctx)),
        url_(std::move(url)),
        location_("s3://" + url_.bucket + (url_.prefix.empty() ? "" : "/" + url_.prefix)),
        identity_("s3|" + ctx_->endpoint_id + "|" + url_.bucket + "|" + url_.prefix) {}

  const std::string& location() const override { return location_; }
  std::string identity() const override { return identity_; }

  std::optional<FileInfo> stat(const std::string& name) const override {
    if (!valid_name(name)) return std::nullopt;
    if (is_small_file_name(name)) {
      auto s = small(name, /*reuse_fresh=*/true);
      if (!s) return std::nullopt;
      return s->info;
    }
    auto o = ctx_->client->head(url_.bucket, key_of(name));
    if (!o) return std::nullopt;
    return file_info(*o);
  }

  std::unique_ptr<ReadableFile> open(const std::string& name, Access) const override {
    ObjectInfo o;
    if (!valid_name(name)) throw Error(Errc::kNotFound, path_of(name) + ": no such object", ENOENT);
    if (is_small_file_name(name)) {
      auto s = small(name, true);
      if (!s) throw Error(Errc::kNotFound, path_of(name) + ": no such object", ENOENT);
      o = {s->info.size, s->info.etag, s->info.mtime_ns};
    } else {
      auto h = ctx_->client->head(url_.bucket, key_of(name));
      if (!h) throw Error(Errc::kNotFound, path_of(name) + ": no such object", ENOENT);
      o = *h;
    }
    return std::make_unique<S3File>(ctx_, url_.bucket, key_of(name), o);
  }

  std::string read_small(const std::string& name, size_t limit) const override {
    if (!valid_name(name)) throw Error(Errc::kNotFound, path_of(name) + ": no such object", ENOENT);
    auto s = small(name, true);
    if (!s) throw Error(Errc::kNotFound, path_of(name) + ": no such object", ENOENT);
    if (s->content.size() > limit)
      throw Error(Errc::kFormat, path_of(name) + ": larger than " + std::to_string(limit) + " bytes");
    return s->content;
  }

  std::vector<std::string> list() const override {
    std::vector<std::string> prefixes;
    const std::string base = url_.prefix.empty() ? "" : url_.prefix + "/";
    auto objects = ctx_->client->list(url_.bucket, base, "/", &prefixes);
    std::vector<std::string> out;
    for (const auto& o : objects)
      if (o.key.size() > base.size()) out.push_back(o.key.substr(base.size()));
    for (const auto& p : prefixes)
      if (p.size() > base.size() + 1) out.push_back(p.substr(base.size(), p.size() - base.size() - 1));
    return out;
  }

  std::unique_ptr<WritableFile> create(const std::string& name, mode_t) override { read_only(path_of(name)); }
  std::unique_ptr<WritableFile> open_writable(const std::string& name) override { read_only(path_of(name)); }
  void publish(const std::string& name, std::string_view, mode_t) override { read_only(path_of(name)); }
  void rename(const std::string& from, const std::string&) override { read_only(path_of(from)); }
  void remove(const std::string& name) override { read_only(path_of(name)); }
  void sync() override {}
  std::unique_ptr<StorageLock> lock() override { read_only(location_); }
  std::unique_ptr<ChangeWatch> watch() const override { return nullptr; }
  bool holds_objects() const override { return true; }

 private:
  struct Small {
    FileInfo info;
    std::string content;
    std::chrono::steady_clock::time_point checked;
    bool missing = false;  // the answer was "no such object"
  };

  static bool valid_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
  }
  std::string key_of(const std::string& name) const { return url_.prefix.empty() ? name : url_.prefix + "/" + name; }

  // The small file `name`, revalidated unless checked within kFreshness;
  // nullopt when there is none. Answers are remembered, a missing one too.
  std::optional<Small> small(const std::string& name, bool reuse_fresh) const {
    std::string etag;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = small_.find(name);
      if (it != small_.end()) {
        if (reuse_fresh && std::chrono::steady_clock::now() - it->second.checked < kFreshness) {
          if (it->second.missing) return std::nullopt;
          return it->second;
        }
        etag = it->second.info.etag;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    std::optional<S3Client::Whole> got;
    bool missing = false;
    try {
      got = ctx_->client->get_whole(url_.bucket, key_of(name), etag, size_t{256} << 20);
    } catch (const Error& e) {
      if (e.code() != Errc::kNotFound || dynamic_cast<const ObjectChanged*>(&e)) throw;
      missing = true;
    }
    std::lock_guard<std::mutex> lock(mu_);
    Small& s = small_[name];
    s.checked = now;
    s.missing = missing;
    if (missing) {
      s.info = {};
      s.content.clear();
      return std::nullopt;
    }
    if (got) {
      s.info = file_info(got->info);
      s.content = std::move(got->body);
    }
    return s;
  }

  std::shared_ptr<S3Context> ctx_;
  S3Url url_;
  std::string location_, identity_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Small> small_;
};

}  // namespace

bool is_small_file_name(std::string_view name) {
  return name == ".conf" || name == ".stat" || name.ends_with(".json");
}

namespace {

struct ContextRegistry {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<S3Context>> contexts;
};
ContextRegistry& context_registry() {
  static ContextRegistry r;
  return r;
}

}  // namespace

std::shared_ptr<S3Context> context_for(const S3Options& options) {
  ResolvedConfig config = resolve(options);
  // One context per distinct setting, shared while any storage uses it.
  const std::string key = config.endpoint.base() + "|" + config.region + "|" + config.credentials.access_key + "|" +
                          options.cache_dir + "|" + std::to_string(options.part_bytes) + "|" +
                          std::to_string(options.memory_max_bytes) + "|" + std::to_string(options.cache_max_bytes) +
                          "|" + std::to_string(options.max_requests) + "|" + std::to_string(options.retries) + "|" +
                          std::to_string(options.timeout_seconds) + "|" + std::to_string(options.prefetch_max_bytes);
  auto& [mu, contexts] = context_registry();
  std::lock_guard<std::mutex> lock(mu);
  if (auto ctx = contexts[key].lock()) return ctx;
  if (options.part_bytes < 4096 || options.part_bytes > (uint64_t{1} << 30))
    throw Error(Errc::kInvalidArgument, "s3_part_size must be from 4 KiB to 1 GiB");
  auto ctx = std::make_shared<S3Context>();
  ctx->options = options;
  ctx->endpoint_id = config.endpoint.base();
  ctx->client = std::make_shared<S3Client>(std::move(config), options.retries, options.timeout_seconds);
  std::unique_ptr<DiskCache> disk;
  if (!options.cache_dir.empty()) disk = std::make_unique<DiskCache>(options.cache_dir, options.cache_max_bytes, options.warn);
  ctx->parts = std::make_shared<PartCache>(options.memory_max_bytes, options.max_requests, std::move(disk));
  contexts[key] = ctx;
  return ctx;
}

std::shared_ptr<Storage> make_s3_storage(std::shared_ptr<S3Context> ctx, const S3Url& url) {
  return std::make_shared<S3Storage>(std::move(ctx), url);
}

}  // namespace s3

std::shared_ptr<Storage> open_s3_storage(const std::string& url, const S3Options& options) {
  return s3::make_s3_storage(s3::context_for(options), s3::parse_s3_url(url));
}

S3Counters s3_counters() {
  S3Counters c;
  auto& [mu, contexts] = s3::context_registry();
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [key, weak] : contexts) {
    auto ctx = weak.lock();
    if (!ctx) continue;
    const s3::PartCache::Stats p = ctx->parts->stats();
    c.memory_hits += p.memory_hits;
    c.disk_hits += p.disk_hits;
    c.fetches += p.fetches;
    c.fetched_bytes += p.fetched_bytes;
    c.held_bytes += p.held_bytes;
    if (const s3::DiskCache* d = ctx->parts->disk()) {
      const s3::DiskCache::Stats ds = d->stats();
      c.disk_damaged += ds.damaged;
      c.disk_bytes += ds.bytes;
    }
  }
  return c;
}

void check_s3_access(const std::string& url, const S3Options& options) {
  const s3::S3Url u = s3::parse_s3_url(url);
  auto ctx = s3::context_for(options);
  if (ctx->client->config().credentials.empty())
    throw Error(Errc::kNotPermitted,
                url + ": no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in "
                      "~/.aws/credentials)",
                EACCES);
  ctx->client->list(u.bucket, u.prefix.empty() ? "" : u.prefix + "/", "/", nullptr, 1, 1);
}

}  // namespace tensorblob
