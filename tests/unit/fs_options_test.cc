#include "command_line.h"
#include "options.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

using namespace blobfs;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("conf/blobfs.yaml lists every key with exactly the built-in defaults") {
  std::string text = slurp("conf/blobfs.yaml");
  REQUIRE(!text.empty());
  Options from_file;
  from_file.threads = 99;  // prove the file sets it back
  apply_config_yaml(from_file, text, "conf/blobfs.yaml");
  Options defaults;
  CHECK(from_file.threads == defaults.threads);
  CHECK(from_file.naming_width == defaults.naming_width);
  CHECK(from_file.file_mode == defaults.file_mode);
  CHECK(from_file.dir_mode == defaults.dir_mode);
  CHECK(from_file.entry_timeout == defaults.entry_timeout);
  CHECK(from_file.log_level == defaults.log_level);
  CHECK(from_file.cache_max_bytes == defaults.cache_max_bytes);
  CHECK(from_file.s3_memory_bytes == defaults.s3_memory_bytes);
  CHECK(from_file.s3_part_size == defaults.s3_part_size);
  CHECK(from_file.s3_prefetch_bytes == defaults.s3_prefetch_bytes);
  CHECK(from_file.s3_requests == defaults.s3_requests);
  CHECK(from_file.s3_retries == defaults.s3_retries);
  CHECK(from_file.s3_timeout == defaults.s3_timeout);
  CHECK(from_file.map_blocks == defaults.map_blocks);
  CHECK(from_file.metrics_listen == defaults.metrics_listen);
  // Every key appears in the file, in the same order as option_keys().
  size_t pos = 0;
  for (const auto& key : option_keys()) {
    INFO(key);
    size_t at = text.find("\n" + key + ":", pos);
    CHECK(at != std::string::npos);
    if (at != std::string::npos) pos = at;
  }
}

TEST_CASE("config values of every type are parsed and range-checked") {
  Options o;
  apply_config_yaml(o,
                    "naming_width: 8\nnpy_views: false\nentry_timeout: 1.5\nthreads: 2\nuid: 1000\n"
                    "file_mode: 0440\ndir_mode: \"0550\"\nlog_level: debug\nsource: /data/blob\n",
                    "c.yaml");
  CHECK(o.naming_width == 8);
  CHECK(!o.npy_views);
  CHECK(o.entry_timeout == 1.5);
  CHECK(o.threads == 2);
  CHECK(o.uid == 1000);
  CHECK(o.file_mode == 0440);
  CHECK(o.dir_mode == 0550);
  CHECK(o.log_level == LogLevel::kDebug);
  CHECK(o.source == "/data/blob");
}

TEST_CASE("config errors name the file, the line and the key") {
  Options o;
  auto err = [&](const std::string& text) {
    try {
      apply_config_yaml(o, text, "c.yaml");
    } catch (const OptionError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err("threads: 4\nbogus: 1\n") == "c.yaml:2: unknown option 'bogus'");
  CHECK(err("\n\nthreads: many\n") == "c.yaml:3: threads: expected an integer, got 'many'");
  CHECK(err("threads: 0\n") == "c.yaml:1: threads: 0 is out of range [1, 1024]");
  CHECK(err("naming_width: 20\n") == "c.yaml:1: naming_width: 20 is out of range [1, 19]");
  CHECK(err("npy_views: maybe\n") == "c.yaml:1: npy_views: expected true or false (also yes/no, on/off, 1/0), got 'maybe'");
  CHECK(err("file_mode: 7777\n") == "c.yaml:1: file_mode: 7777 has bits outside 0777 (setuid, setgid or sticky)");
  CHECK(err("file_mode: 4444\n") == "c.yaml:1: file_mode: 4444 has bits outside 0777 (setuid, setgid or sticky)");
  CHECK(err("dir_mode: \"1777\"\n") == "c.yaml:1: dir_mode: 1777 has bits outside 0777 (setuid, setgid or sticky)");
  CHECK(err("file_mode: 0999\n") == "c.yaml:1: file_mode: expected an octal mode such as 0444, got '0999'");
  CHECK(err("attr_timeout: -1\n") == "c.yaml:1: attr_timeout: -1 is out of range [0, 1e9] seconds");
  CHECK(err("log_level: loud\n") == "c.yaml:1: log_level: expected error, warning, info or debug, got 'loud'");
  CHECK(err("threads: [1, 2]\n") == "c.yaml:1: threads: expected a single value, not a list or map");
  CHECK(err("- a\n- b\n") == "c.yaml: the config must be a map of key: value");
  CHECK_THAT(err("threads: [1\n"), Catch::StartsWith("c.yaml:") && Catch::Contains("invalid YAML"));
  CHECK(err("uid: 99999999999\n") == "c.yaml:1: uid: 99999999999 is out of range [-1, 4294967294]");
  CHECK(err("") == "no error");
}

TEST_CASE("-o lists set keys, accept plain mount flags, and refuse the unknown") {
  Options o;
  apply_mount_options(o, "ro,nosuid,nodev,noatime,_netdev,nofail,allow_other,naming_width=8,x-systemd.automount");
  CHECK(o.allow_other);
  CHECK(o.naming_width == 8);
  apply_mount_options(o, "rw,default_permissions=false,log_level=error");
  CHECK(!o.default_permissions);
  CHECK(o.log_level == LogLevel::kError);
  CHECK_THROWS_WITH(apply_mount_options(o, "frobnicate"), "-o: frobnicate: expected key=value");
  CHECK_THROWS_WITH(apply_mount_options(o, "threads=x"), "-o: threads: expected an integer, got 'x'");
  CHECK_THROWS_WITH(apply_mount_options(o, "nope=1"), "-o: unknown option 'nope'");
}

TEST_CASE("every boolean takes the same spellings, in the config and in -o") {
  for (const char* t : {"true", "True", "TRUE", "yes", "on", "1"}) {
    INFO(t);
    Options o;
    o.allow_other = false;
    o.keep_cache = false;
    apply_mount_options(o, std::string("allow_other=") + t + ",keep_cache=" + t);
    CHECK(o.allow_other);
    CHECK(o.keep_cache);
    Options y;
    y.keep_cache = false;
    apply_config_yaml(y, std::string("keep_cache: ") + t + "\n", "c.yaml");
    CHECK(y.keep_cache);
  }
  for (const char* f : {"false", "False", "no", "off", "0"}) {
    INFO(f);
    Options o;
    apply_mount_options(o, std::string("allow_other=") + f + ",keep_cache=" + f);
    CHECK(!o.allow_other);
    CHECK(!o.keep_cache);
  }
  CHECK(parse_bool("2") == std::nullopt);
  CHECK(parse_bool("") == std::nullopt);
  CHECK(parse_bool("yes please") == std::nullopt);
  // A boolean key alone means true; any other key alone is an error.
  Options o;
  o.keep_cache = false;
  apply_mount_options(o, "keep_cache,verify_on_read");
  CHECK(o.keep_cache);
  CHECK(o.verify_on_read);
  CHECK_THROWS_WITH(apply_mount_options(o, "threads"), "-o: threads: expected key=value");
  // fuse2's nonempty, still in many fstab lines, is accepted and ignored.
  CHECK_NOTHROW(apply_mount_options(o, "ro,nonempty,allow_other"));
}

TEST_CASE("the command line takes positionals, -o in both spellings, -f, -d and --config") {
  CommandLine cl = parse_command_line({"/src", "/mnt", "-o", "ro,naming_width=7", "-oallow_other", "-f", "--config=/c.yaml"});
  CHECK(cl.positional == std::vector<std::string>{"/src", "/mnt"});
  CHECK(cl.o_lists == std::vector<std::string>{"ro,naming_width=7", "allow_other"});
  CHECK(cl.foreground);
  CHECK(!cl.debug);
  CHECK(cl.config == "/c.yaml");
  CHECK(parse_command_line({"-d"}).foreground);
  CHECK(parse_command_line({"--help"}).help);
  CHECK(parse_command_line({"-V"}).version);
  CHECK_THROWS_WITH(parse_command_line({"a", "b", "c"}), Catch::Contains("too many arguments"));
  CHECK_THROWS_WITH(parse_command_line({"-x"}), "unknown option -x");
  CHECK_THROWS_WITH(parse_command_line({"-o"}), "-o needs a value");
}

TEST_CASE("options resolve as defaults, then config, then -o, then the positionals") {
  CommandLine cl = parse_command_line({"-o", "threads=3", "--config", "c.yaml"});
  Options o = resolve_options(cl, "threads: 2\nnaming_width: 5\nsource: /a\nmountpoint: /m\n");
  CHECK(o.threads == 3);
  CHECK(o.naming_width == 5);
  CHECK(o.source == "/a");
  CHECK(o.mountpoint == "/m");
  cl.positional = {"/b", "/n"};
  o = resolve_options(cl, "source: /a\n");
  CHECK(o.source == "/b");
  CHECK(o.mountpoint == "/n");
  CHECK_THROWS_WITH(resolve_options(parse_command_line({}), ""), Catch::Contains("no SOURCE"));
  CHECK_THROWS_WITH(resolve_options(parse_command_line({"/src"}), ""), Catch::Contains("no MOUNTPOINT"));
}

TEST_CASE("sizes in bytes") {
  CHECK(parse_byte_size("4096") == 4096u);
  CHECK(parse_byte_size("8M") == 8u << 20);
  CHECK(parse_byte_size("8MiB") == 8u << 20);
  CHECK(parse_byte_size("8mb") == 8u << 20);
  CHECK(parse_byte_size("10G") == uint64_t{10} << 30);
  CHECK(parse_byte_size("1.5K") == 1536u);
  CHECK(parse_byte_size("2T") == uint64_t{2} << 40);
  CHECK(parse_byte_size("0") == 0u);
  for (const char* bad : {"", "M", "-1M", "1.3B", "10X", "10 G", "1e30", "8MBB", "nan"}) {
    INFO(bad);
    CHECK(!parse_byte_size(bad));
  }
  Options o;
  CHECK_THROWS_WITH(set_option(o, "cache_max_bytes", "lots", "-o"), Catch::Contains("cache_max_bytes"));
  CHECK_THROWS_WITH(set_option(o, "s3_part_size", "1K", "-o"), Catch::Contains("out of range"));
  set_option(o, "s3_part_size", "16M", "-o");
  CHECK(o.s3_part_size == 16u << 20);
}
