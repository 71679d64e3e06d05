#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "commands.h"
#include "input_file.h"
#include "posix_file.h"
#include "progress.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"

namespace tblob {

namespace {

using tensorblob::DType;
using tensorblob::Errc;
using tensorblob::Error;
using tensorblob::Shape;

// One input file, checked before anything is written.
struct Source {
  InputFile file;
  uint64_t data_offset = 0;
  int64_t tensors = 0;
};

// dtype and item shape from a .npy header (its first axis counts tensors).
std::pair<DType, Shape> config_from_npy(const tensorblob::NpyHeader& h, const std::string& path) {
  auto dt = tensorblob::dtype_from_typestr(h.descr);
  if (!dt) throw Error(Errc::kFormat, path + ": numpy dtype '" + h.descr + "' cannot be stored in a blob");
  if (h.shape.empty()) throw Error(Errc::kFormat, path + ": a 0-d array has no axis of tensors; give --shape ''");
  return {*dt, Shape(h.shape.begin() + 1, h.shape.end())};
}

Source check_file(const std::string& path, DType dtype, const Shape& shape, int64_t item_bytes, bool raw_allowed) {
  Source s;
  s.file = open_input(path);
  const InputFile& info = s.file;
  const std::string dtname(tensorblob::dtype_info(dtype).name);
  if (!info.npy) {
    if (!raw_allowed)
      throw Error(Errc::kFormat, path + ": not a .npy file (raw files need --dtype and --shape)");
    if (info.size % static_cast<uint64_t>(item_bytes) != 0)
      throw Error(Errc::kFormat, path + ": raw file of " + std::to_string(info.size) +
                                     " bytes is not a whole number of " + std::to_string(item_bytes) + "-byte tensors");
    s.tensors = static_cast<int64_t>(info.size / static_cast<uint64_t>(item_bytes));
    return s;
  }
  const auto& h = *info.npy;
  if (h.fortran_order) throw Error(Errc::kFormat, path + ": Fortran-order arrays are not supported; save a C-order copy");
  if (h.descr.find('O') != std::string::npos)
    throw Error(Errc::kFormat, path + ": object arrays cannot be stored in a blob");
  auto dt = tensorblob::dtype_from_typestr(h.descr);
  if (!dt) throw Error(Errc::kFormat, path + ": numpy dtype '" + h.descr + "' cannot be stored in a blob");
  if (*dt != dtype)
    throw Error(Errc::kFormat, path + ": dtype " + h.descr + " (" + std::string(tensorblob::dtype_info(*dt).name) +
                                   ") does not match the blob's " + dtname);
  if (h.shape == shape) {
    s.tensors = 1;
  } else if (h.shape.size() == shape.size() + 1 && std::equal(h.shape.begin() + 1, h.shape.end(), shape.begin())) {
    s.tensors = h.shape[0];
  } else {
    throw Error(Errc::kFormat, path + ": shape " + tensorblob::shape_to_string(h.shape) + " is neither " +
                                   tensorblob::shape_to_string(shape) + " nor (n, *" +
                                   tensorblob::shape_to_string(shape) + ")");
  }
  uint64_t want = h.data_offset + static_cast<uint64_t>(tensorblob::checked_mul(s.tensors, item_bytes, path.c_str()));
  if (info.size != want)
    throw Error(Errc::kFormat, path + ": header promises " + std::to_string(want) + " bytes but the file has " +
                                   std::to_string(info.size));
  s.data_offset = h.data_offset;
  return s;
}

}  // namespace

int cmd_import(const ParsedArgs& args) {
  if (args.positional.size() < 2) throw UsageError("expected DIR and at least one FILE");
  const std::string dir = args.positional[0];
  const std::vector<std::string> files(args.positional.begin() + 1, args.positional.end());
  auto dtype_opt = args.get("--dtype");
  auto shape_opt = args.get("--shape");
  if (dtype_opt.has_value() != shape_opt.has_value()) throw UsageError("--dtype and --shape go together");

  struct stat st;
  const bool exists = ::stat((dir + "/.conf").c_str(), &st) == 0;
  tensorblob::OpenOptions o;
  if (auto bs = args.get("--block-size")) o.block_size = parse_int(*bs, "--block-size");
  if (dtype_opt) {
    o.dtype = *dtype_opt;
    o.shape = parse_shape(*shape_opt);
  } else if (!exists && args.has("--create")) {
    InputFile first = open_input(files[0]);
    if (!first.npy) throw UsageError(files[0] + " is not a .npy file: give --dtype and --shape");
    auto [dt, shape] = config_from_npy(*first.npy, files[0]);
    o.dtype = std::string(tensorblob::dtype_info(dt).name);
    o.shape = shape;
  }
  if (!exists && !args.has("--create"))
    throw Error(Errc::kNotFound, dir + ": no such blob (use --create to make one)");

  tensorblob::Blob blob = tensorblob::Blob::open(dir, exists ? "a" : "w", o);
  if (dtype_opt && (tensorblob::parse_dtype(*dtype_opt) != blob.dtype() || *o.shape != blob.shape()))
    throw UsageError("--dtype/--shape " + *dtype_opt + " " + tensorblob::shape_to_string(*o.shape) +
                     " differ from the blob's " + std::string(tensorblob::dtype_info(blob.dtype()).name) + " " +
                     tensorblob::shape_to_string(blob.shape()));

  std::vector<Source> sources;
  uint64_t total = 0;
  for (const auto& f : files) {
    sources.push_back(check_file(f, blob.dtype(), blob.shape(), blob.item_bytes(), dtype_opt.has_value()));
    total += static_cast<uint64_t>(sources.back().tensors) * static_cast<uint64_t>(blob.item_bytes());
  }

  const int64_t before = blob.size();
  const int64_t item = blob.item_bytes();
  const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / item);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<int64_t>(chunk, 1 << 20) * item));
  const int64_t per_read = static_cast<int64_t>(buf.size()) / item;
  try {
    Progress progress("import", total);
    for (auto& s : sources) {
      for (int64_t done = 0; done < s.tensors;) {
        int64_t k = std::min(per_read, s.tensors - done);
        size_t want = static_cast<size_t>(k * item);
        read_exact(s.file, buf.data(), want, s.data_offset + static_cast<uint64_t>(done * item));
        blob.write_raw(buf.data(), k);
        progress.advance(want);
        done += k;
      }
    }
  } catch (...) {
    // Nothing of a failed import is committed. If even that fails (a full
    // disk), the committed .stat still names only the old tensors; the error
    // to report is the first one.
    try {
      blob.truncate(before);
    } catch (...) {
    }
    throw;
  }
  blob.close();
  return kExitOk;
}

}  // namespace tblob
