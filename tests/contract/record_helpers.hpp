// Records for the store contract suites: a package or group with every field set from a
// name, and one-line descriptions of records so that one comparison shows which field differs.
// Plain functions.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "domain/records.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg::test {

inline PackageRecord Package(const std::string& project, const std::string& group,
                             const std::string& name, std::int64_t time = 1000) {
  PackageRecord p;
  p.project = project;
  p.group = group;
  p.name = name;
  p.kind = PackageKind::kPyFile;
  p.status = PackageStatus::kReady;
  p.sha256 = "sha-of-" + name;
  p.size = static_cast<std::int64_t>(name.size());
  p.underlying_name = "u-" + name;
  p.owner = "owner1";
  p.create_time = time;
  p.update_time = time;
  return p;
}

inline GroupRecord Group(const std::string& project, const std::string& name,
                         std::int64_t time = 1000) {
  GroupRecord g;
  g.project = project;
  g.name = name;
  g.owner = "owner1";
  g.description = "first";
  g.create_time = time;
  g.update_time = time;
  return g;
}

// Every field, so one comparison shows which differs.
inline std::string Describe(const PackageRecord& p) {
  std::ostringstream out;
  out << p.project << '|' << p.group << '|' << p.name << '|' << ToString(p.kind) << '|'
      << ToString(p.status) << '|' << p.sha256 << '|' << p.size << '|' << p.underlying_name << '|'
      << p.owner << '|' << p.create_time << '|' << p.update_time << '|' << p.is_async << '|'
      << p.status_reason << "|tags:";
  for (const auto& tag : p.tags) out << tag.key << '=' << tag.value << ';';
  return out.str();
}

inline std::string Describe(const GroupRecord& g) {
  std::ostringstream out;
  out << g.project << '|' << g.name << '|' << g.owner << '|' << g.description << '|'
      << g.create_time << '|' << g.update_time << "|packages:\n";
  for (const auto& p : g.packages) out << "  " << Describe(p) << '\n';
  return out.str();
}

inline std::vector<std::string> Names(const std::vector<PackageRecord>& packages) {
  std::vector<std::string> names;
  for (const auto& p : packages) names.push_back(p.name);
  return names;
}

inline std::vector<std::string> GroupNames(const std::vector<GroupRecord>& groups) {
  std::vector<std::string> names;
  for (const auto& g : groups) names.push_back(g.name);
  return names;
}

inline std::vector<std::string> GroupNames(const ProjectContents& contents) {
  return GroupNames(contents.groups);
}

}  // namespace dlipkg::test
