#include "commands.h"
#include "posix_file.h"
#include "progress.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"

namespace tblob {

int cmd_export(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "export");
  auto ds = tensorblob::open_dataset(pos[0]);
  if (ds->npy_descr().empty())
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                            pos[0] + ": numpy has no dtype " + ds->dtype_name() + "; use tblob cat for raw bytes");
  auto [a, b] = args.get("--range") ? parse_range(*args.get("--range"), ds->count())
                                    : std::pair<int64_t, int64_t>{0, ds->count()};
  tensorblob::Shape shape = ds->range_shape(a, b);

  tensorblob::AtomicFileWriter out(pos[1]);
  std::string header = tensorblob::npy_header(ds->npy_descr(), shape);
  out.write(header.data(), header.size());
  uint64_t begin = ds->item_offset(a), end = ds->item_offset(b);
  Progress progress("export", end - begin);
  std::vector<std::byte> buf(8 << 20);
  for (uint64_t off = begin; off < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
    ds->read(off, n, buf.data());
    out.write(buf.data(), n);
    progress.advance(n);
    off += n;
  }
  out.commit();
  return kExitOk;
}

}  // namespace tblob
