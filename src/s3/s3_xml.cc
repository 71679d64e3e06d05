#include "s3_xml.h"

#include <tinyxml2.h>

#include <cctype>
#include <cstring>
#include <ctime>

#include "tensorblob/error.h"

namespace tensorblob::s3 {

namespace {

using tinyxml2::XMLDocument;
using tinyxml2::XMLElement;

std::string text_of(const XMLElement* parent, const char* name) {
  const XMLElement* e = parent ? parent->FirstChildElement(name) : nullptr;
  const char* t = e ? e->GetText() : nullptr;
  return t ? std::string(t) : std::string();
}

const XMLElement* root(XMLDocument& doc, std::string_view xml, const char* name, std::string_view what) {
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS)
    throw FormatError(std::string(what) + ": the answer is not XML (" + doc.ErrorStr() + ")");
  const XMLElement* r = doc.RootElement();
  if (!r || std::strcmp(r->Name(), name) != 0)
    throw FormatError(std::string(what) + ": expected <" + name + "> in the answer, got <" +
                      (r ? r->Name() : "nothing") + ">");
  return r;
}

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

int64_t to_ns(std::tm& tm) { return static_cast<int64_t>(timegm(&tm)) * 1000000000LL; }

}  // namespace

std::string unquote_etag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  if (etag.size() >= 6 && etag.substr(0, 6) == "&quot;") etag.remove_prefix(6);
  if (etag.size() >= 6 && etag.substr(etag.size() - 6) == "&quot;") etag.remove_suffix(6);
  return std::string(etag);
}

std::optional<int64_t> parse_iso8601(std::string_view s) {
  std::tm tm{};
  const std::string str(s);
  const char* end = strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  int64_t ns = to_ns(tm);
  if (*end == '.') {
    int64_t frac = 0, scale = 1000000000;
    for (++end; std::isdigit(static_cast<unsigned char>(*end)); ++end)
      if (scale > 1) frac += (*end - '0') * (scale /= 10);
    ns += frac;
  }
  if (*end != 'Z' || end[1] != '\0') return std::nullopt;
  return ns;
}

std::optional<int64_t> parse_http_date(std::string_view s) {
  std::tm tm{};
  const std::string str(s);
  const char* end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return to_ns(tm);
}

ListPage parse_list_page(std::string_view xml, std::string_view what) {
  XMLDocument doc;
  const XMLElement* r = root(doc, xml, "ListBucketResult", what);
  ListPage page;
  for (const XMLElement* c = r->FirstChildElement("Contents"); c; c = c->NextSiblingElement("Contents")) {
    ListedObject o;
    o.key = text_of(c, "Key");
    if (o.key.empty()) throw FormatError(std::string(what) + ": a listed object has no key");
    if (!parse_u64(text_of(c, "Size"), o.size))
      throw FormatError(std::string(what) + ": object " + o.key + " has no valid size");
    o.etag = unquote_etag(text_of(c, "ETag"));
    o.mtime_ns = parse_iso8601(text_of(c, "LastModified")).value_or(0);
    page.objects.push_back(std::move(o));
  }
  for (const XMLElement* p = r->FirstChildElement("CommonPrefixes"); p; p = p->NextSiblingElement("CommonPrefixes"))
    page.prefixes.push_back(text_of(p, "Prefix"));
  page.truncated = text_of(r, "IsTruncated") == "true";
  page.next_token = text_of(r, "NextContinuationToken");
  if (page.truncated && page.next_token.empty())
    throw FormatError(std::string(what) + ": a truncated listing without a continuation token");
  return page;
}

ErrorBody parse_error_body(std::string_view xml) {
  XMLDocument doc;
  if (xml.empty() || doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) return {};
  const XMLElement* r = doc.RootElement();
  if (!r || std::strcmp(r->Name(), "Error") != 0) return {};
  return {text_of(r, "Code"), text_of(r, "Message")};
}

std::string parse_upload_id(std::string_view xml, std::string_view what) {
  XMLDocument doc;
  const XMLElement* r = root(doc, xml, "InitiateMultipartUploadResult", what);
  std::string id = text_of(r, "UploadId");
  if (id.empty()) throw FormatError(std::string(what) + ": no UploadId in the answer");
  return id;
}

std::string complete_upload_body(const std::vector<std::string>& etags) {
  std::string out = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i)
    out += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + etags[i] + "\"</ETag></Part>";
  out += "</CompleteMultipartUpload>";
  return out;
}

CompleteResult parse_complete_result(std::string_view xml) {
  CompleteResult r;
  XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    r.error = {"MalformedAnswer", "the answer to CompleteMultipartUpload is not XML"};
    return r;
  }
  const XMLElement* e = doc.RootElement();
  if (e && std::strcmp(e->Name(), "CompleteMultipartUploadResult") == 0) {
    r.ok = true;
    r.etag = unquote_etag(text_of(e, "ETag"));
    return r;
  }
  if (e && std::strcmp(e->Name(), "Error") == 0) r.error = {text_of(e, "Code"), text_of(e, "Message")};
  else r.error = {"MalformedAnswer", "unexpected answer to CompleteMultipartUpload"};
  return r;
}

}  // namespace tensorblob::s3
