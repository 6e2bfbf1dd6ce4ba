#include "app/stores.hpp"

#include <variant>

#include "adapters/metadata/postgres/postgres_metadata_store.hpp"
#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"

namespace dlipkg::app {
namespace {

template <class Store>
Result<MetadataStores> Serving(Result<std::unique_ptr<Store>> opened, bool shared,
                               std::string description) {
  if (!opened) return std::unexpected(opened.error());
  std::shared_ptr<Store> store = std::move(*opened);
  return MetadataStores{store, store, store, shared, std::move(description)};
}

}  // namespace

Result<MetadataStores> OpenMetadataStores(const ServeConfig& config) {
  if (const auto* sqlite = std::get_if<SqliteMetadata>(&config.metadata))
    return Serving(SqliteMetadataStore::Open(sqlite->path), false, "SQLite");
  const auto& postgres = std::get<PostgresMetadata>(config.metadata);
  return Serving(
      PostgresMetadataStore::Open({.url = postgres.url,
                                   .connections = static_cast<std::size_t>(
                                       config.metadata_connections > 0 ? config.metadata_connections
                                                                       : config.handler_threads)}),
      true, "PostgreSQL");
}

}  // namespace dlipkg::app
