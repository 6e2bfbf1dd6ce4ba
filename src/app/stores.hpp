// Opens the metadata store that --metadata names: SQLite (embedded, one instance) or PostgreSQL
// (shared by any number of instances). Either object serves as both MetadataStore and JobQueue.
// Used once by the composition root at start-up.
#pragma once

#include <memory>
#include <string>

#include "app/config.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/url_key_store.hpp"

namespace dlipkg::app {

struct MetadataStores {
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<JobQueue> jobs;         // the same object
  std::shared_ptr<UrlKeyStore> url_keys;  // the same object
  // Whether other instances may use the same stores at the same time (PostgreSQL).
  bool shared = false;
  std::string description;  // for the start-up log: the engine, never the URL
};

// Errors: those of the store's Open (kInternal).
Result<MetadataStores> OpenMetadataStores(const ServeConfig& config);

}  // namespace dlipkg::app
