// The S3 client's pure parts, without a server: the signer against AWS's
// published examples, the URL, endpoint, credentials and XML parsers, the
// part planner and read-ahead window, and both caches.
#include <atomic>
#include <fstream>
#include <thread>

#include "disk_cache.h"
#include "http.h"
#include "part_cache.h"
#include "read_ahead.h"
#include "s3_client.h"
#include "s3_config.h"
#include "s3_xml.h"
#include "sigv4.h"
#include "test_util.h"

using namespace tensorblob;
using namespace tensorblob::s3;

namespace {

const Credentials kS3DocCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const char* kS3DocDate = "20130524T000000Z";

SigningInput s3_doc_get(const std::string& path, std::vector<std::pair<std::string, std::string>> query) {
  SigningInput in;
  in.method = "GET";
  in.path = path;
  in.query = std::move(query);
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", kS3DocDate},
                {"x-amz-content-sha256", std::string(kEmptySha256)}};
  return in;
}

}  // namespace

TEST_CASE("SigV4: the signatures of the S3 documentation's examples") {
  SECTION("GET an object with a range") {
    SigningInput in = s3_doc_get("/test.txt", {});
    in.headers.emplace_back("Range", "bytes=0-9");
    SigningResult r = sign_v4(in, kS3DocCreds, "us-east-1", "s3", kS3DocDate);
    CHECK(r.signed_headers == "host;range;x-amz-content-sha256;x-amz-date");
    CHECK(r.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(r.authorization ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  SECTION("GET a bucket's lifecycle (a query key without a value)") {
    SigningResult r = sign_v4(s3_doc_get("/", {{"lifecycle", ""}}), kS3DocCreds, "us-east-1", "s3", kS3DocDate);
    CHECK(r.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }
  SECTION("list objects (query keys sorted)") {
    SigningResult r =
        sign_v4(s3_doc_get("/", {{"prefix", "J"}, {"max-keys", "2"}}), kS3DocCreds, "us-east-1", "s3", kS3DocDate);
    CHECK(r.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("SigV4: the aws-sig-v4-test-suite's get-vanilla") {
  SigningInput in;
  in.method = "GET";
  in.path = "/";
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  const Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  SigningResult r = sign_v4(in, creds, "us-east-1", "service", "20150830T123600Z");
  CHECK(r.canonical_request ==
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
            std::string(kEmptySha256));
  CHECK(r.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST_CASE("SigV4: encoding, header trimming, dates") {
  CHECK(uri_encode("a b/c~d_e-f.g$", true) == "a%20b/c~d_e-f.g%24");
  CHECK(uri_encode("a/b", false) == "a%2Fb");
  CHECK(uri_encode("\xc3\xa9", false) == "%C3%A9");
  CHECK(canonical_query({{"b", "2"}, {"a", "x y"}, {"a", "1"}}) == "a=1&a=x%20y&b=2");
  SigningInput in;
  in.headers = {{"X-Amz-Date", "20150830T123600Z"}, {"Host", "  h   x  "}};
  CHECK(sign_v4(in, {"k", "s", ""}, "r", "s3", "20150830T123600Z").canonical_request.find("host:h x\n") !=
        std::string::npos);
  CHECK(amz_date(0) == "19700101T000000Z");
  CHECK(amz_date(1369353600) == "20130524T000000Z");
  CHECK(sha256_hex("") == kEmptySha256);
}

TEST_CASE("s3:// URLs") {
  CHECK(parse_s3_url("s3://bucket").prefix.empty());
  CHECK(parse_s3_url("s3://bucket/").prefix.empty());
  S3Url u = parse_s3_url("s3://my-bucket.1/a/b//");
  CHECK(u.bucket == "my-bucket.1");
  CHECK(u.prefix == "a/b");
  for (const char* bad : {"s3://", "s3://ab", "s3://UPPER/x", "s3://-lead/x", "s3://b_ok/../x", "s3://bucket/a//b",
                          "s3://bucket/./a", "/local/path"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_s3_url(bad), Error);
  }
  CHECK(is_s3_url("s3://x"));
  CHECK(!is_s3_url("S3://x"));
}

TEST_CASE("endpoints") {
  Endpoint e = parse_endpoint("http://127.0.0.1:7480/", "s3_endpoint");
  CHECK(e.scheme == "http");
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 7480);
  CHECK(e.authority() == "127.0.0.1:7480");
  CHECK(parse_endpoint("https://S3.example.com:443", "x").authority() == "s3.example.com");
  CHECK(parse_endpoint("http://[::1]:9000", "x").authority() == "[::1]:9000");
  for (const char* bad : {"127.0.0.1:7480", "ftp://h", "http://", "http://h:0", "http://h:70000", "http://h:12a",
                          "http://h/path", "http://user@h", "http://[::1"}) {
    INFO(bad);
    try {
      parse_endpoint(bad, "s3_endpoint");
      FAIL("accepted");
    } catch (const Error& err) {
      CHECK(std::string(err.what()).find("s3_endpoint") != std::string::npos);
    }
  }
}

TEST_CASE("the AWS tools' INI files") {
  IniFile f = parse_ini(
      "# comment\n[default]\naws_access_key_id = AK\n AWS_Secret_Access_Key=SK  \n\n[profile dev]\nregion = "
      "eu-west-1\n; other\n[broken\nkey=value\n");
  CHECK(f["default"]["aws_access_key_id"] == "AK");
  CHECK(f["default"]["aws_secret_access_key"] == "SK");
  CHECK(f["dev"]["region"] == "eu-west-1");
}

TEST_CASE("resolving endpoint, region and credentials as the AWS tools do") {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  auto getenv = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto read = [&](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  S3Options o;
  SECTION("nothing set: AWS, virtual-host style, us-east-1, no credentials") {
    ResolvedConfig c = resolve(o, getenv, read);
    CHECK(c.endpoint.host == "s3.us-east-1.amazonaws.com");
    CHECK(!c.path_style);
    CHECK(c.region == "us-east-1");
    CHECK(c.credentials.empty());
  }
  SECTION("the environment") {
    env = {{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"},
           {"AWS_REGION", "eu-west-3"},
           {"AWS_ACCESS_KEY_ID", "AK"},
           {"AWS_SECRET_ACCESS_KEY", "SK"},
           {"AWS_SESSION_TOKEN", "TOK"},
           {"HOME", "/h"}};
    files["/h/.aws/credentials"] = "[default]\naws_access_key_id=FILE\naws_secret_access_key=FILE\n";
    ResolvedConfig c = resolve(o, getenv, read);
    CHECK(c.endpoint.authority() == "127.0.0.1:9000");
    CHECK(c.path_style);
    CHECK(c.region == "eu-west-3");
    CHECK(c.credentials.access_key == "AK");
    CHECK(c.credentials.session_token == "TOK");
    SECTION("keys win over the environment") {
      o.endpoint = "http://other:1";
      o.region = "r2";
      c = resolve(o, getenv, read);
      CHECK(c.endpoint.host == "other");
      CHECK(c.region == "r2");
    }
  }
  SECTION("the shared files and AWS_PROFILE") {
    env = {{"HOME", "/h"}, {"AWS_PROFILE", "dev"}};
    files["/h/.aws/credentials"] = "[default]\naws_access_key_id=D\n[dev]\naws_access_key_id=DEV\naws_secret_access_key=S\n";
    files["/h/.aws/config"] = "[profile dev]\nregion=ap-south-1\nendpoint_url=http://gw:8080\n";
    ResolvedConfig c = resolve(o, getenv, read);
    CHECK(c.credentials.access_key == "DEV");
    CHECK(c.credentials_source.find("[dev]") != std::string::npos);
    CHECK(c.region == "ap-south-1");
    CHECK(c.endpoint.authority() == "gw:8080");
  }
}

TEST_CASE("ListObjectsV2 answers") {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>tok==</NextContinuationToken>"
      "<Contents><Key>p/.stat</Key><LastModified>2013-05-24T00:00:01.500Z</LastModified>"
      "<ETag>&quot;abc&quot;</ETag><Size>42</Size></Contents>"
      "<Contents><Key>p/x&amp;y</Key><LastModified>2013-05-24T00:00:00.000Z</LastModified>"
      "<ETag>\"d-2\"</ETag><Size>0</Size></Contents>"
      "<CommonPrefixes><Prefix>p/sub/</Prefix></CommonPrefixes></ListBucketResult>";
  ListPage p = parse_list_page(xml, "s3://b/p");
  REQUIRE(p.objects.size() == 2);
  CHECK(p.objects[0].key == "p/.stat");
  CHECK(p.objects[0].size == 42);
  CHECK(p.objects[0].etag == "abc");
  CHECK(p.objects[0].mtime_ns == 1369353601500000000LL);
  CHECK(p.objects[1].key == "p/x&y");
  CHECK(p.objects[1].etag == "d-2");
  CHECK(p.prefixes == std::vector<std::string>{"p/sub/"});
  CHECK(p.truncated);
  CHECK(p.next_token == "tok==");
  CHECK_THROWS_AS(parse_list_page("<html>", "s3://b/p"), FormatError);
  CHECK_THROWS_AS(parse_list_page("<Error><Code>x</Code></Error>", "s3://b/p"), FormatError);
  CHECK_THROWS_AS(parse_list_page("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
                                  "</ListBucketResult>",
                                  "s3://b/p"),
                  FormatError);
  CHECK_THROWS_AS(parse_list_page("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", "x"),
                  FormatError);
}

TEST_CASE("error bodies, uploads, dates") {
  ErrorBody e = parse_error_body("<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>");
  CHECK(e.code == "NoSuchBucket");
  CHECK(e.message == "gone");
  CHECK(parse_error_body("").code.empty());
  CHECK(parse_error_body("<html>bad gateway</html>").code.empty());
  CHECK(parse_upload_id("<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>", "x") ==
        "U1");
  CHECK_THROWS_AS(parse_upload_id("<InitiateMultipartUploadResult/>", "x"), FormatError);
  CHECK(complete_upload_body({"a", "b"}) ==
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part><Part><PartNumber>2"
        "</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>");
  CHECK(parse_complete_result("<CompleteMultipartUploadResult><ETag>\"e-2\"</ETag></CompleteMultipartUploadResult>").etag ==
        "e-2");
  CompleteResult bad = parse_complete_result("<Error><Code>InternalError</Code></Error>");
  CHECK(!bad.ok);
  CHECK(bad.error.code == "InternalError");
  CHECK(parse_http_date("Fri, 24 May 2013 00:00:00 GMT") == 1369353600000000000LL);
  CHECK(!parse_http_date("yesterday"));
  CHECK(!parse_iso8601("2013-05-24T00:00:00"));
}

TEST_CASE("HTTP header lines") {
  CHECK(!parse_header_line("HTTP/1.1 200 OK\r\n"));
  CHECK(!parse_header_line("\r\n"));
  auto h = parse_header_line("ETag:  \"abc\" \r\n");
  REQUIRE(h);
  CHECK(h->first == "etag");
  CHECK(h->second == "\"abc\"");
  CHECK(!parse_header_line(": no name\r\n"));
}

TEST_CASE("retries and the errors a user sees") {
  CHECK(retryable_status(503, ""));
  CHECK(retryable_status(500, ""));
  CHECK(retryable_status(400, "RequestTimeout"));
  CHECK(!retryable_status(403, "AccessDenied"));
  CHECK(!retryable_status(404, "NoSuchKey"));
  CHECK(backoff_ms(1, 1.0) == 50);
  CHECK(backoff_ms(2, 1.0) == 100);
  CHECK(backoff_ms(20, 1.0) == 2000);
  CHECK(backoff_ms(3, 0.5) == 100);
  Error denied = error_for(403, {"InvalidAccessKeyId", "no such key"}, "s3://b/k", "http://gw", "AWS_ACCESS_KEY_ID");
  CHECK(denied.code() == Errc::kNotPermitted);
  CHECK(std::string(denied.what()).find("AWS_ACCESS_KEY_ID") != std::string::npos);
  CHECK(std::string(denied.what()).find("InvalidAccessKeyId") != std::string::npos);
  Error bucket = error_for(404, {"NoSuchBucket", ""}, "s3://nob/k", "http://gw", "x");
  CHECK(bucket.code() == Errc::kNotFound);
  CHECK(std::string(bucket.what()).find("bucket does not exist") != std::string::npos);
  CHECK(error_for(404, {}, "s3://b/k", "gw", "x").sys_errno() == ENOENT);
  CHECK(error_for(503, {"SlowDown", "x"}, "s3://b/k", "gw", "x").sys_errno() == EIO);
}

TEST_CASE("the part planner") {
  const uint64_t P = 8;
  CHECK(parts_covering(0, 0, P, 100).empty());
  CHECK(parts_covering(100, 1, P, 100).empty());
  PartSpan s = parts_covering(7, 2, P, 100);
  CHECK(s.first == 0);
  CHECK(s.last == 2);
  s = parts_covering(96, 50, P, 100);  // clipped at the end
  CHECK(s.first == 12);
  CHECK(s.last == 13);
  CHECK(part_size(12, P, 100) == 4);
  CHECK(part_size(11, P, 100) == 8);
  CHECK(part_size(13, P, 100) == 0);
}

TEST_CASE("the read-ahead window") {
  ReadAhead ra(1 << 20, 8 << 20);
  CHECK(ra.on_read(0, 4096) == 0);  // one read says nothing yet
  CHECK(ra.on_read(4096, 4096) == 1 << 20);
  CHECK(ra.on_read(8192, 4096) == 2 << 20);
  CHECK(ra.on_read(12288, 4096) == 4 << 20);
  CHECK(ra.on_read(16384, 4096) == 8 << 20);
  CHECK(ra.on_read(20480, 4096) == 8 << 20);  // the cap
  CHECK(ra.on_read(uint64_t{1} << 40, 4096) == 0);  // a random read: nothing ahead
  SECTION("two interleaved sequential readers each keep their window") {
    ReadAhead two(1 << 20, 64 << 20);
    const uint64_t far = uint64_t{1} << 30;
    two.on_read(0, 4096);
    two.on_read(far, 4096);
    CHECK(two.on_read(4096, 4096) == 1 << 20);
    CHECK(two.on_read(far + 4096, 4096) == 1 << 20);
    CHECK(two.on_read(8192, 4096) == 2 << 20);
    CHECK(two.on_read(far + 8192, 4096) == 2 << 20);
  }
}

TEST_CASE("the disk cache serves only intact parts") {
  testutil::TempDir t;
  std::vector<std::string> warnings;
  const std::string dir = t / "cache";
  Bytes part(1000);
  for (size_t i = 0; i < part.size(); ++i) part[i] = static_cast<std::byte>(i * 7);
  {
    DiskCache c(dir, 1 << 20, [&](const std::string& w) { warnings.push_back(w); });
    Bytes got(part.size() + 1);
    CHECK(!c.load("k", part.size(), got.data()));
    c.store("k", part.data(), part.size());
    REQUIRE(c.load("k", part.size(), got.data()));
    CHECK(std::equal(part.begin(), part.end(), got.begin()));
    CHECK(!c.load("k", part.size() + 1, got.data()));  // not the size its key stands for: damaged, removed
    CHECK(c.stats().damaged == 1);
    c.store("k", part.data(), part.size());
  }
  DiskCache c(dir, 1 << 20, [&](const std::string& w) { warnings.push_back(w); });  // kept across runs
  Bytes buf(part.size());
  REQUIRE(c.load("k", part.size(), buf.data()));
  SECTION("a flipped byte") {
    std::fstream f(c.file_of("k"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kPartHeaderBytes + 500);
    f.put('\x55');
    f.close();
    CHECK(!c.load("k", part.size(), buf.data()));
    CHECK(c.stats().damaged == 1);
    CHECK(warnings.size() == 2);  // the wrong size above, and this
    CHECK(!testutil::fs::exists(c.file_of("k")));  // removed, to be fetched again
  }
  SECTION("a cut file") {
    testutil::fs::resize_file(c.file_of("k"), kPartHeaderBytes + 10);
    CHECK(!c.load("k", part.size(), buf.data()));
  }
  SECTION("another key's file put in its place") {
    c.store("other", part.data(), part.size());
    testutil::fs::rename(c.file_of("other"), c.file_of("k"));
    CHECK(!c.load("k", part.size(), buf.data()));
  }
  SECTION("the bound: least recently used go first") {
    DiskCache small(t / "small", 3 * (kPartHeaderBytes + 1000), nullptr);
    small.store("a", part.data(), part.size());
    small.store("b", part.data(), part.size());
    small.store("c", part.data(), part.size());
    CHECK(small.load("a", part.size(), buf.data()));  // a is now the most recent
    small.store("d", part.data(), part.size());
    CHECK(!small.load("b", part.size(), buf.data()));
    CHECK(small.load("a", part.size(), buf.data()));
    CHECK(small.load("d", part.size(), buf.data()));
    CHECK(small.stats().evicted == 1);
  }
}

TEST_CASE("the part cache fetches each part once and forgets failures") {
  PartCache cache(1 << 20, 2, nullptr);
  std::atomic<int> fetches{0};
  auto fetch = [&](std::byte* dst, size_t n) {
    ++fetches;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::memset(dst, 7, n);
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 8; ++i)
    readers.emplace_back([&] { CHECK(cache.get("p0", 100, fetch)->at(99) == std::byte{7}); });
  for (auto& r : readers) r.join();
  CHECK(fetches == 1);

  int failing = 0;
  auto broken = [&](std::byte*, size_t) {
    ++failing;
    throw Error(Errc::kIo, "down", EIO);
  };
  CHECK_THROWS_AS(cache.get("p1", 100, broken), Error);
  CHECK_THROWS_AS(cache.get("p1", 100, broken), Error);
  CHECK(failing == 2);  // not remembered
  CHECK(cache.get("p1", 100, fetch)->size() == 100);

  SECTION("prefetched parts are there when asked for") {
    cache.prefetch("p2", 100, fetch);
    for (int i = 0; i < 100 && cache.stats().prefetches == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const int before = fetches;
    CHECK(cache.get("p2", 100, fetch)->size() == 100);
    CHECK((fetches - before) <= 1);  // fetched once, by whichever got there first
    CHECK((fetches == before || cache.stats().memory_hits + cache.stats().waits > 0));
  }
  SECTION("memory stays within its bound") {
    PartCache small(300, 1, nullptr);
    for (int i = 0; i < 10; ++i) small.get("q" + std::to_string(i), 100, fetch);
    CHECK(small.stats().held_bytes <= 300);
  }
}
