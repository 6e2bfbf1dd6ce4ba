#include "adapters/s3/s3_xml.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <sstream>

// Boost.PropertyTree (header-only, in libboost1.81-dev): its XML reader decodes entities and
// skips declarations, comments and DOCTYPEs without expanding anything.
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

namespace dlipkg {
namespace {

using boost::property_tree::ptree;

std::optional<ptree> Parse(std::string_view xml) {
  std::istringstream in{std::string(xml)};
  ptree tree;
  try {
    boost::property_tree::read_xml(in, tree, boost::property_tree::xml_parser::no_comments);
  } catch (const boost::property_tree::ptree_error&) {
    return std::nullopt;
  }
  return tree;
}

// The document's root element when it is named `root`.
Result<ptree> Root(std::string_view xml, std::string_view root) {
  auto tree = Parse(xml);
  const std::string what = "S3 reply: expected a " + std::string(root) + " document";
  if (!tree) return Fail(ErrorCode::kInternal, what + ", not well-formed XML");
  auto found = tree->get_child_optional(std::string(root));
  if (!found) return Fail(ErrorCode::kInternal, what);
  return *found;
}

std::string Text(const ptree& node, const char* child) { return node.get<std::string>(child, ""); }

}  // namespace

Result<ObjectListing> ParseListObjects(std::string_view xml) {
  auto root = Root(xml, "ListBucketResult");
  if (!root) return std::unexpected(root.error());
  ObjectListing listing{.truncated = Text(*root, "IsTruncated") == "true",
                        .next_continuation_token = Text(*root, "NextContinuationToken")};
  for (const auto& [name, node] : *root) {
    if (name == "Contents")
      listing.objects.push_back({Text(node, "Key"), Text(node, "LastModified")});
  }
  return listing;
}

Result<UploadListing> ParseListUploads(std::string_view xml) {
  auto root = Root(xml, "ListMultipartUploadsResult");
  if (!root) return std::unexpected(root.error());
  UploadListing listing{.truncated = Text(*root, "IsTruncated") == "true",
                        .next_key_marker = Text(*root, "NextKeyMarker"),
                        .next_upload_id_marker = Text(*root, "NextUploadIdMarker")};
  for (const auto& [name, node] : *root) {
    if (name == "Upload")
      listing.uploads.push_back(
          {Text(node, "Key"), Text(node, "UploadId"), Text(node, "Initiated")});
  }
  return listing;
}

Result<std::string> ParseUploadId(std::string_view xml) {
  auto root = Root(xml, "InitiateMultipartUploadResult");
  if (!root) return std::unexpected(root.error());
  std::string id = Text(*root, "UploadId");
  if (id.empty()) return Fail(ErrorCode::kInternal, "S3 reply: no upload id");
  return id;
}

std::string S3ErrorCode(std::string_view xml) {
  auto root = Root(xml, "Error");
  if (!root) return {};
  const std::string code = Text(*root, "Code");
  const bool word = code.size() <= 64 && std::ranges::all_of(code, [](unsigned char c) {
                      return std::isalnum(c) || c == '.';
                    });
  return word ? code : std::string();
}

}  // namespace dlipkg
