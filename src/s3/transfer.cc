// tblob push and pull: a store's files moved between a local directory and
// object storage, data first and the commit's own file last.
#include "transfer.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "s3_storage.h"
#include "tensorblob/blob_format.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"
#include "tensorblob/s3.h"
#include "tensorblob/store.h"

namespace tensorblob::s3 {

namespace {

constexpr const char* kConf = ".conf";
constexpr const char* kStat = ".stat";
constexpr const char* kHashes = ".hashes.npy";

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || !EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr)) throw std::runtime_error("OpenSSL MD5 failed");
  }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void add(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string raw() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string hex(const std::string& raw) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

}  // namespace

StoreFiles blob_files(const std::string& conf_text, const std::string& stat_text, const std::string& stat_path,
                      bool hashes) {
  StoreFiles f;
  f.blob = true;
  f.stat_text = stat_text;
  const BlobStatus st = parse_blob_status(stat_text, stat_path);
  const BlobConf conf = parse_blob_conf(conf_text, stat_path.substr(0, stat_path.size() - 5) + ".conf");
  std::set<std::string> seen;
  for (size_t k = 0; k < st.blocks.size(); ++k) {
    const std::string& b = st.blocks[k];
    const int64_t rows = std::clamp<int64_t>(st.len - static_cast<int64_t>(k) * conf.block_size, 0, conf.block_size);
    if (!seen.insert(b).second) continue;
    if (rows < conf.block_size) f.committed_bytes[b] = static_cast<uint64_t>(rows * conf.item_bytes);
    f.data.push_back(b);
  }
  if (hashes) f.data.push_back(kHashes);
  f.final = {kConf, kStat};
  return f;
}

StoreFiles ragged_files(const std::string& base, const std::vector<std::string>& present) {
  const RaggedPaths p = ragged_paths_for_base(base);
  StoreFiles f;
  auto has = [&](const std::string& n) { return std::find(present.begin(), present.end(), n) != present.end(); };
  for (const std::string* n : {&p.dat, &p.starts, &p.hashes})
    if (has(*n)) f.data.push_back(*n);
  f.final = {p.json};
  return f;
}

std::string etag_of(const ReadableFile& file, uint64_t part_bytes, bool multipart) {
  const uint64_t size = file.size();
  std::vector<std::byte> buf(std::min<uint64_t>(std::max<uint64_t>(size, 1), 8 << 20));
  if (!multipart) {
    Md5 md5;
    for (uint64_t at = 0; at < size;) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - at));
      file.read(at, k, buf.data());
      md5.add(buf.data(), k);
      at += k;
    }
    return hex(md5.raw());
  }
  Md5 outer;
  uint64_t parts = 0;
  for (uint64_t start = 0; start < size || parts == 0; start += part_bytes) {
    Md5 part;
    const uint64_t end = std::min(size, start + part_bytes);
    for (uint64_t at = start; at < end;) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - at));
      file.read(at, k, buf.data());
      part.add(buf.data(), k);
      at += k;
    }
    const std::string raw = part.raw();
    outer.add(raw.data(), raw.size());
    ++parts;
    if (size == 0) break;
  }
  return hex(outer.raw()) + "-" + std::to_string(parts);
}

bool same_content(const ReadableFile& file, const std::string& etag) {
  const size_t dash = etag.find('-');
  if (dash == std::string::npos) return etag == etag_of(file, 0, false);
  const uint64_t parts = std::strtoull(etag.c_str() + dash + 1, nullptr, 10);
  if (parts == 0) return false;
  const uint64_t size = file.size();
  // The part size is not in the ETag: ours, then the AWS tools' and boto3's.
  for (uint64_t mib : {kUploadPartBytes >> 20, uint64_t{8}, uint64_t{5}, uint64_t{16}, uint64_t{64}}) {
    const uint64_t p = mib << 20;
    if ((size + p - 1) / p == parts && etag == etag_of(file, p, true)) return true;
  }
  return false;
}

namespace {

// What one side of a transfer holds: names -> (size, etag).
struct Remote {
  uint64_t size = 0;
  std::string etag;
};

// Runs fn(i) for i in [0, n) on `threads` threads; the first error is
// rethrown once all have stopped.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (;;) {
      const size_t i = next++;
      if (i >= n || failed) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  const int t = static_cast<int>(std::min<size_t>(n, static_cast<size_t>(std::max(1, threads))));
  for (int k = 1; k < t; ++k) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// Progress across threads, reported from one at a time.
class Tally {
 public:
  Tally(const TransferProgress& fn, uint64_t total, size_t files) : fn_(fn), total_(total), files_(files) {}
  void bytes(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    done_ += n;
    if (fn_) fn_(done_, total_, files_done_, files_);
  }
  void file() {
    std::lock_guard<std::mutex> lock(mu_);
    ++files_done_;
    if (fn_) fn_(done_, total_, files_done_, files_);
  }

 private:
  const TransferProgress& fn_;
  std::mutex mu_;
  uint64_t total_, done_ = 0;
  size_t files_, files_done_ = 0;
};

std::string join_key(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

// The store at `dir` (local or remote, through its Storage): its files in
// publishing order, read once so that what is sent is one commit.
struct Source {
  std::shared_ptr<Storage> dir;
  StoreFiles files;
  std::map<std::string, std::string> final_text;  // the final files' bytes as read
  std::optional<BlobConf> conf;                   // a blob's
};

// The first `size` bytes of a file, as a file.
class Prefix final : public ReadableFile {
 public:
  Prefix(const ReadableFile& f, uint64_t size) : f_(f), size_(std::min(size, f.size())) {}
  const std::string& path() const override { return f_.path(); }
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, size_t n, void* dst) const override { f_.read(offset, n, dst); }
  ByteView view(uint64_t offset, size_t n) const override { return f_.view(offset, n); }
  const std::byte* mapped() const override { return f_.mapped(); }
  bool reaches(uint64_t end) const override { return end <= size_ && f_.reaches(end); }
  FileInfo info() const override { return f_.info(); }

 private:
  const ReadableFile& f_;
  uint64_t size_;
};

Source read_source(const std::string& path, const S3Options& s3) {
  Source src;
  const StoreKind kind = store_kind(path, s3);
  if (kind == StoreKind::kBlob || kind == StoreKind::kTensorDB) {
    src.dir = open_storage(path, s3);
    const std::string stat = src.dir->read_small(kStat);
    src.final_text[kStat] = stat;
    src.final_text[kConf] = src.dir->read_small(kConf);
    src.files = blob_files(src.final_text[kConf], stat, src.dir->path_of(kStat), src.dir->is_file(kHashes));
    src.conf = parse_blob_conf(src.final_text[kConf], src.dir->path_of(kConf));
    return src;
  }
  if (kind == StoreKind::kRagged) {
    const RaggedPaths full = ragged_paths(path);
    auto [dir, base] = split_path(full.base);
    src.dir = open_storage(dir, s3);
    const RaggedPaths names = ragged_paths_for_base(base);
    if (src.dir->is_file(names.publish))
      throw Error(Errc::kBusy, src.dir->path_of(names.publish) + ": a build is publishing this dataset; try again after it");
    std::vector<std::string> present;
    for (const std::string* n : {&names.dat, &names.starts, &names.hashes, &names.json})
      if (src.dir->is_file(*n)) present.push_back(*n);
    src.files = ragged_files(base, present);
    src.files.base = base;
    src.final_text[names.json] = src.dir->read_small(names.json);
    return src;
  }
  throw Error(Errc::kNotFound, path + ": no blob or ragged dataset here", ENOENT);
}

}  // namespace

}  // namespace tensorblob::s3

namespace tensorblob {

using namespace s3;

TransferResult push_store(const std::string& dir, const std::string& url, const S3Options& s3,
                          const TransferOptions& options) {
  if (is_s3_url(dir)) throw Error(Errc::kInvalidArgument, dir + ": push sends a local store (the source is on S3)");
  const S3Url dest = parse_s3_url(url);
  check_s3_access(url, s3);
  auto ctx = context_for(s3);
  S3Client& client = *ctx->client;

  Source src = read_source(absolute_path(dir), s3);
  // For a ragged dataset named by its base, the objects sit under the URL
  // itself: s3://b/p/ds.json for s3://b/p/ds.
  std::string prefix = dest.prefix;
  std::string remote_base;
  if (!src.files.blob) {
    if (prefix.empty()) throw Error(Errc::kInvalidArgument, url + ": name the dataset, as in s3://BUCKET/PREFIX/NAME");
    auto [up, base] = split_path(prefix);
    prefix = up == "." ? "" : up;
    remote_base = base;
  }
  // A ragged dataset's files are named for its base; remotely for the URL's.
  auto to_remote = [&](const std::string& name) {
    return src.files.blob ? name : remote_base + name.substr(src.files.base.size());
  };
  std::map<std::string, Remote> remote;
  for (const auto& o : client.list(dest.bucket, prefix.empty() ? "" : prefix + "/", "/"))
    remote[o.key.substr(prefix.empty() ? 0 : prefix.size() + 1)] = {o.size, o.etag};

  // Open every data file first: a file this commit names that a writer
  // replaces meanwhile stays readable through its descriptor.
  std::vector<std::unique_ptr<ReadableFile>> data;
  uint64_t total = 0;
  for (const auto& name : src.files.data) {
    data.push_back(src.dir->open(name, Access::kPread));
    auto cut = src.files.committed_bytes.find(name);
    total += cut != src.files.committed_bytes.end() ? std::min(cut->second, data.back()->size()) : data.back()->size();
  }
  for (const auto& [name, text] : src.final_text) total += text.size();

  TransferResult result;
  std::mutex result_mu;
  Tally tally(options.progress, total, data.size() + src.files.final.size());

  auto upload = [&](const std::string& local_name, const ReadableFile& f) {
    const std::string name = to_remote(local_name);
    const std::string key = join_key(prefix, name);
    const uint64_t size = f.size();
    auto it = remote.find(name);
    if (it != remote.end() && it->second.size == size && same_content(f, it->second.etag)) {
      tally.bytes(size);
      std::lock_guard<std::mutex> lock(result_mu);
      ++result.files_skipped;
      return;
    }
    if (size < kMultipartThreshold) {
      std::string body(size, '\0');
      f.read(0, size, body.data());
      client.put(dest.bucket, key, body);
      tally.bytes(size);
    } else {
      const std::string id = client.start_upload(dest.bucket, key);
      try {
        const size_t parts = static_cast<size_t>((size + kUploadPartBytes - 1) / kUploadPartBytes);
        std::vector<std::string> etags(parts);
        parallel_for(parts, std::max(1, options.parallel / 2), [&](size_t p) {
          const uint64_t at = p * kUploadPartBytes, n = std::min(kUploadPartBytes, size - at);
          std::string body(n, '\0');
          f.read(at, n, body.data());
          etags[p] = client.upload_part(dest.bucket, key, id, static_cast<int>(p + 1), body);
          tally.bytes(n);
        });
        client.finish_upload(dest.bucket, key, id, etags);
      } catch (...) {
        try {
          client.abort_upload(dest.bucket, key, id);
        } catch (...) {
        }
        throw;
      }
    }
    std::lock_guard<std::mutex> lock(result_mu);
    ++result.files_sent;
    result.bytes_sent += size;
  };

  parallel_for(data.size(), options.parallel, [&](size_t i) {
    // A last block goes up only as far as its committed rows: the rest of a
    // local block file is an unwritten (sparse) tail.
    auto cut = src.files.committed_bytes.find(src.files.data[i]);
    if (cut != src.files.committed_bytes.end()) upload(src.files.data[i], Prefix(*data[i], cut->second));
    else upload(src.files.data[i], *data[i]);
    tally.file();
  });
  // The files that name the data, in order, each only once what it names is there.
  for (const auto& name : src.files.final) {
    const std::string& text = src.final_text[name];
    auto it = remote.find(to_remote(name));
    bool same = false;
    if (it != remote.end() && it->second.size == text.size()) {
      auto got = client.get_whole(dest.bucket, join_key(prefix, to_remote(name)), "", size_t{256} << 20);
      same = got && got->body == text;
    }
    if (same) {
      ++result.files_skipped;
    } else {
      client.put(dest.bucket, join_key(prefix, to_remote(name)), text);
      ++result.files_sent;
      result.bytes_sent += text.size();
    }
    tally.bytes(text.size());
    tally.file();
  }

  if (options.delete_unlisted && src.files.blob) {
    std::set<std::string> keep(src.files.data.begin(), src.files.data.end());
    for (const auto& [name, info] : remote) {
      if (keep.count(name) || !is_valid_block_name(name)) continue;
      client.remove(dest.bucket, join_key(prefix, name));
      ++result.files_deleted;
    }
  }
  return result;
}

TransferResult pull_store(const std::string& url, const std::string& dir, const S3Options& s3,
                          const TransferOptions& options) {
  if (!is_s3_url(url)) throw Error(Errc::kInvalidArgument, url + ": pull copies a store from an s3:// URL");
  if (is_s3_url(dir)) throw Error(Errc::kInvalidArgument, dir + ": pull writes into a local directory");
  check_s3_access(url, s3);
  Source src = read_source(url, s3);
  const S3Url from = parse_s3_url(src.dir->location());

  const std::string target = absolute_path(dir);
  std::string local_dir = target, local_base;
  if (!src.files.blob) std::tie(local_dir, local_base) = split_path(target);  // DIR names the dataset's base
  auto to_local = [&](const std::string& name) {
    return src.files.blob ? name : local_base + name.substr(src.files.base.size());
  };
  if (::mkdir(local_dir.c_str(), 0777) != 0 && errno != EEXIST) throw_errno("cannot create the directory", local_dir);
  auto local = open_posix_storage(local_dir);
  std::unique_ptr<StorageLock> lock;
  if (src.files.blob) lock = local->lock();  // no writer of ours changes it meanwhile
  auto ctx = context_for(s3);
  S3Client& client = *ctx->client;

  std::map<std::string, Remote> remote;
  for (const auto& o : client.list(from.bucket, from.prefix.empty() ? "" : from.prefix + "/", "/"))
    remote[o.key.substr(from.prefix.empty() ? 0 : from.prefix.size() + 1)] = {o.size, o.etag};
  uint64_t total = 0;
  for (const auto& name : src.files.data) {
    auto it = remote.find(name);
    if (it == remote.end())
      throw Error(Errc::kNotFound, src.dir->path_of(name) + ": listed by the store but not there", ENOENT);
    total += it->second.size;
  }
  TransferResult result;
  std::mutex result_mu;
  Tally tally(options.progress, total, src.files.data.size() + src.files.final.size());

  parallel_for(src.files.data.size(), options.parallel, [&](size_t i) {
    const std::string& rname = src.files.data[i];
    const std::string name = to_local(rname);
    const Remote& r = remote[rname];
    // A block is block-sized locally, whatever the object's length.
    const uint64_t local_size =
        src.conf && is_valid_block_name(rname) ? std::max<uint64_t>(r.size, static_cast<uint64_t>(src.conf->block_bytes))
                                               : r.size;
    if (auto have = local->stat(name); have && have->regular() && have->size == local_size) {
      auto f = local->open(name, Access::kPread);
      if (same_content(Prefix(*f, r.size), r.etag)) {
        tally.bytes(r.size);
        tally.file();
        std::lock_guard<std::mutex> g(result_mu);
        ++result.files_skipped;
        return;
      }
    }
    const std::string tmp = temp_name(name);
    local->remove(tmp);
    auto out = local->create(tmp, 0644);
    try {
      std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(kUploadPartBytes, std::max<uint64_t>(r.size, 1))));
      for (uint64_t at = 0; at < r.size;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.size - at));
        client.get_range(from.bucket, join_key(from.prefix, rname), at, n, buf.data(), r.etag);
        out->write(at, buf.data(), n);
        at += n;
        tally.bytes(n);
      }
      if (local_size > r.size) out->resize(local_size);  // the unwritten tail, sparse
      out->sync();
      out.reset();
      local->rename(tmp, name);
    } catch (...) {
      out.reset();
      local->remove(tmp);
      throw;
    }
    tally.file();
    std::lock_guard<std::mutex> g(result_mu);
    ++result.files_sent;
    result.bytes_sent += r.size;
  });
  local->sync();
  for (const auto& name : src.files.final) {
    const std::string& text = src.final_text[name];
    local->publish(to_local(name), text, 0644);
    ++result.files_sent;
    result.bytes_sent += text.size();
    tally.file();
  }
  return result;
}

}  // namespace tensorblob
