#include "commands.h"
#include "progress.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"
#include "tensorblob/storage.h"
#include "tensorblob/store.h"

namespace tblob {

int cmd_export(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "export");
  auto store = tensorblob::open_store(pos[0]);
  for (int attempt = 0;; ++attempt) {
    auto ds = store->snapshot();
    if (ds->npy_descr().empty())
      throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                              pos[0] + ": numpy has no dtype " + ds->dtype_name() + "; use tblob cat for raw bytes");
    auto [a, b] = args.get("--range") ? parse_range(*args.get("--range"), ds->count())
                                      : std::pair<int64_t, int64_t>{0, ds->count()};
    // A regular file (or a new path) is replaced whole at the end; a device,
    // FIFO or /dev/stdout is written through (storage.h).
    std::unique_ptr<tensorblob::OutputFile> out = tensorblob::open_output_file(pos[1]);
    uint64_t written = 0;
    try {
      std::string header = tensorblob::npy_header(ds->npy_descr(), ds->range_shape(a, b));
      out->write(header.data(), header.size());
      written += header.size();
      const uint64_t begin = ds->item_offset(a), end = ds->item_offset(b);
      Progress progress("export", end - begin);
      std::vector<std::byte> buf(8 << 20);
      for (uint64_t off = begin; off < end;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
        ds->read(off, n, buf.data());
        out->write(buf.data(), n);
        written += n;
        progress.advance(n);
        off += n;
      }
      out->commit();
      return kExitOk;
    } catch (const tensorblob::Error& e) {
      // A block a later commit replaced: start over on the new commit, unless
      // part of this one already went down a stream.
      if (e.code() != tensorblob::Errc::kNotFound || attempt >= 3 || (out->streaming() && written > 0)) throw;
      if (!store->refresh()) throw;
    }
  }
}

}  // namespace tblob
