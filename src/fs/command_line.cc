#include "command_line.h"

namespace blobfs {

const char* const kUsage =
    "usage: blobfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [--config FILE]\n"
    "\n"
    "Mounts SOURCE at MOUNTPOINT: a tensorblob directory, or a ragged picomap\n"
    "dataset (its base path or any of its files), local or at s3://BUCKET/PREFIX.\n"
    "Every tensor is a file (000123.bin), with meta.yaml, all.bin, all.npy, and by\n"
    "name 000123.npy, A-B.bin and A-B.npy (items A..B-1). The mount follows commits\n"
    "to SOURCE (live: false serves the commit found at mount); -o writable makes\n"
    "it take writes (cp, dd, >>, np.save), each file's committed at close.\n"
    "\n"
    "  -o OPTIONS     comma-separated key=value settings; any key of the config file,\n"
    "                 plus allow_other and default_permissions; ro, rw, nosuid, nodev,\n"
    "                 noatime, nofail, _netdev and similar mount flags are accepted and\n"
    "                 ignored (writable: true is what makes a mount take writes)\n"
    "  -f             stay in the foreground (default: detach once the mount is ready)\n"
    "  -d             foreground, with FUSE's request trace on stderr\n"
    "  --config FILE  YAML settings (see conf/blobfs.yaml: every key and its default);\n"
    "                 may also name source and mountpoint\n"
    "  -h, --help     this text\n"
    "  -V, --version  the version\n"
    "\n"
    "S3: endpoint, region and credentials as the AWS tools take them\n"
    "(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or\n"
    "~/.aws/credentials), or the s3_* keys; cache_dir keeps fetched parts on disk.\n"
    "\n"
    "Operators: -o metrics_listen=127.0.0.1:9464 serves Prometheus metrics at\n"
    "http://127.0.0.1:9464/metrics (off by default).\n"
    "\n"
    "Unmount with `fusermount3 -u MOUNTPOINT` or by sending SIGTERM/SIGINT.\n";

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) {
      if (i + 1 >= args.size()) throw OptionError(std::string(flag) + " needs a value");
      return args[++i];
    };
    if (a == "-o") cl.o_lists.push_back(value("-o"));
    else if (a.size() > 2 && a.starts_with("-o")) cl.o_lists.push_back(a.substr(2));
    else if (a == "-f") cl.foreground = true;
    else if (a == "-d" || a == "--debug") cl.debug = cl.foreground = true;
    else if (a == "-h" || a == "--help") cl.help = true;
    else if (a == "-V" || a == "--version") cl.version = true;
    else if (a == "--config") cl.config = value("--config");
    else if (a.starts_with("--config=")) cl.config = a.substr(9);
    else if (a.size() > 1 && a[0] == '-') throw OptionError("unknown option " + a);
    else cl.positional.push_back(a);
  }
  if (cl.positional.size() > 2)
    throw OptionError("too many arguments: expected SOURCE MOUNTPOINT, got " + std::to_string(cl.positional.size()));
  return cl;
}

Options resolve_options(const CommandLine& cl, const std::string& config_text) {
  Options o;
  if (!cl.config.empty()) apply_config_yaml(o, config_text, cl.config);
  for (const auto& list : cl.o_lists) apply_mount_options(o, list);
  if (cl.positional.size() >= 1) o.source = cl.positional[0];
  if (cl.positional.size() >= 2) o.mountpoint = cl.positional[1];
  if (o.source.empty()) throw OptionError("no SOURCE given (on the command line or as 'source' in the config)");
  if (o.mountpoint.empty())
    throw OptionError("no MOUNTPOINT given (on the command line or as 'mountpoint' in the config)");
  return o;
}

}  // namespace blobfs
