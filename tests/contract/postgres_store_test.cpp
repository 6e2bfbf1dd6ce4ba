// PostgreSQL specifics beyond the shared contract suites: URLs and errors that name no secret,
// schema versions and instances starting together, and surviving a restart of PostgreSQL
// itself (stopped and started with scripts/postgres.sh on the cluster in
// $DLIPKG_TEST_POSTGRES_DIR).

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <latch>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/metadata/postgres/postgres_db.hpp"
#include "adapters/metadata/postgres/postgres_metadata_store.hpp"
#include "contract/record_helpers.hpp"
#include "contract/store_backends.hpp"

namespace dlipkg {
namespace {

using test::Group;
using test::Must;
using test::Package;
using test::PostgresBackend;

// Tests that need a server: they fail without one, unless the developer opted out.
class PostgresMetadataStoreWithServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = test::PostgresSkipReason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_NE(test::TestPostgresUrl(), "") << test::kNoPostgres;
  }
};

void ExpectNoSecrets(const Error& error, const std::vector<std::string>& secrets) {
  EXPECT_EQ(error.code, ErrorCode::kInternal);
  EXPECT_TRUE(error.message.starts_with("metadata store failure: ")) << error.message;
  for (const auto& secret : secrets)
    EXPECT_EQ(error.message.find(secret), std::string::npos) << error.message;
}

TEST(PostgresMetadataStore, OpenFailuresNameNoUrlHostOrPassword) {
  // Nothing listens on port 1; no server is needed for this test.
  const auto refused =
      PostgresMetadataStore::Open({.url = "postgresql://alice:s3cret-pw@127.0.0.1:1/db"});
  ASSERT_FALSE(refused);
  ExpectNoSecrets(refused.error(), {"s3cret-pw", "127.0.0.1", "alice", "postgresql://"});
  EXPECT_NE(refused.error().message.find("cannot connect"), std::string::npos)
      << refused.error().message;

  const auto malformed = PostgresMetadataStore::Open({.url = "postgresql://bob:pw%zz@host/db"});
  ASSERT_FALSE(malformed);
  ExpectNoSecrets(malformed.error(), {"pw%zz", "bob", "host/db"});
  EXPECT_NE(malformed.error().message.find("not a valid PostgreSQL connection URL"),
            std::string::npos);
}

TEST_F(PostgresMetadataStoreWithServer, InstancesStartingTogetherMigrateOnce) {
  PostgresBackend backend;
  constexpr int kInstances = 4;
  std::vector<std::string> errors(kInstances);
  std::vector<test::StoreUnderTest> stores(kInstances);
  std::latch start(kInstances);
  std::vector<std::thread> starting;
  for (int i = 0; i < kInstances; ++i) {
    starting.emplace_back([&, i] {
      start.arrive_and_wait();
      auto store = backend.Connect();
      if (store)
        stores[i] = *store;
      else
        errors[i] = store.error().message;
    });
  }
  for (auto& t : starting) t.join();
  for (const auto& error : errors) EXPECT_EQ(error, "");
  ASSERT_FALSE(::testing::Test::HasFailure());

  auto connection = Must(postgres::Connection::Open(backend.Url()));
  postgres::Session session(*connection);
  EXPECT_EQ(Must(sql::SelectOne(session, "SELECT COUNT(*) FROM schema_version", sql::IntFromRow)),
            1);
  EXPECT_GE(Must(sql::SelectOne(session, "SELECT version FROM schema_version", sql::IntFromRow)),
            1);

  // They are one store: what one writes, the others read.
  Must(stores[0].metadata->ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  EXPECT_TRUE(Must(stores[3].metadata->GetPackage("p1", "g1", "a.py")));
}

TEST_F(PostgresMetadataStoreWithServer, RefusesADatabaseFromANewerSchema) {
  PostgresBackend backend;
  Must(backend.Connect());
  {
    auto connection = Must(postgres::Connection::Open(backend.Url()));
    ASSERT_FALSE(connection->Command("UPDATE schema_version SET version = 999"));
  }
  const auto reopened = backend.Connect();
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, ErrorCode::kInternal);
  EXPECT_NE(reopened.error().message.find("newer"), std::string::npos) << reopened.error().message;
}

// ---- Connections the server ends ----

// Ends every server process of connections named `application` and waits (bounded) until
// PostgreSQL has none left, as after a restart, an idle timeout or an administrator's kill.
void TerminateBackends(const std::string& application) {
  auto admin = Must(postgres::Connection::Open(test::TestPostgresUrl()));
  postgres::Session session(*admin);
  const std::string where = " FROM pg_stat_activity WHERE application_name = ?1";
  Must(sql::Select(session, "SELECT pg_terminate_backend(pid)::int" + where, sql::IntFromRow,
                   application));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Must(sql::SelectOne(session, "SELECT COUNT(*)" + where, sql::IntFromRow, application)) >
         0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "backends still alive";
    std::this_thread::yield();
  }
}

// Each kind of call (a statement in autocommit mode, prepared or not, a read-only snapshot, a
// write, queue bookkeeping) on a pooled connection whose server process was ended succeeds on
// a fresh connection. Under scripts/sanitize.sh it also shows that nothing of the dead
// connection's failed statement is leaked: libpqxx 6.4 leaked the error result of each
// (LeakSanitizer: 216 + 2,048 bytes from PQmakeEmptyPGresult, one per call below).
TEST_F(PostgresMetadataStoreWithServer, EachKindOfCallSucceedsAfterTheServerEndedItsConnections) {
  PostgresBackend backend;
  Must(backend.Connect());  // the schema
  const std::string application = "dlipkg_killed_" + std::to_string(::getpid());
  auto store = Must(PostgresMetadataStore::Open(
      {.url = backend.Url() + "&application_name=" + application, .connections = 2}));
  Must(store->ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store->PutUngrouped({Package("p1", "", "u.py")}));
  Must(
      store->EnqueueUploads(std::nullopt, {Package("p1", "", "x")}, {"obs://b/x"}, 9'000'000, 100));
  const auto job = *Must(store->ClaimJob("w1", 1000, 1'000'000));

  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"ListUngrouped (autocommit)",
       [&] {
         EXPECT_EQ(test::Names(Must(store->ListUngrouped("p1", {}, "", 10))),
                   (std::vector<std::string>{"u.py", "x"}));
       }},
      {"GetGroup (snapshot)",
       [&] { EXPECT_EQ(Must(store->GetGroup("p1", "g1"))->packages.size(), 1u); }},
      {"MergeIntoGroup (write)",
       [&] {
         Must(store->MergeIntoGroup(Group("p1", "g1", 2000), {Package("p1", "g1", "b.py", 2000)}));
       }},
      {"RenewLease (bookkeeping)",
       [&] { EXPECT_TRUE(Must(store->RenewLease(job.id, "w1", 1'000'000))); }},
  };
  for (const auto& [what, call] : calls) {
    SCOPED_TRACE(what);
    call();  // the pool now holds a connection that ran this kind of statement
    TerminateBackends(application);
    ASSERT_FALSE(HasFatalFailure());
    call();
  }
}

// A pipeline gives each statement's rows; a failed statement fails the pipeline; and one
// destroyed with a statement in flight leaves its connection idle, fit to be lent again.
TEST_F(PostgresMetadataStoreWithServer, APipelineGivesEachStatementsRowsAndEndsIdle) {
  auto connection = Must(postgres::Connection::Open(test::TestPostgresUrl()));
  postgres::StatementNames names;
  const auto values = [](const sql::Rows& rows) {
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < rows.Count(); ++i) {
      Must(rows.Visit(i, [&](const sql::Row& row) -> Result<void> {
        out.push_back(row.Int(0));
        return {};
      }));
    }
    return out;
  };
  {
    postgres::Pipeline pipeline(*connection, &names);
    const sql::Value three[] = {std::int64_t{3}};
    Must(pipeline.Send("SELECT generate_series(1, ?1::int)", three));
    EXPECT_FALSE(pipeline.Send("SELECT 1", {}));  // one in flight at most
  }
  EXPECT_TRUE(connection->Reusable());
  {
    postgres::Pipeline pipeline(*connection, &names);
    const sql::Value three[] = {std::int64_t{3}}, two[] = {std::int64_t{2}};
    Must(pipeline.Send("SELECT generate_series(1, ?1::int)", three));
    const auto first = Must(pipeline.Receive());
    Must(pipeline.Send("SELECT generate_series(1, ?1::int)", two));  // before reading `first`
    EXPECT_EQ(values(*first), (std::vector<std::int64_t>{1, 2, 3}));
    EXPECT_EQ(values(*Must(pipeline.Receive())), (std::vector<std::int64_t>{1, 2}));
    Must(pipeline.Send("SELECT generate_series(1, ?1::int)", two));  // left in flight
  }
  EXPECT_TRUE(connection->Reusable());
  {
    postgres::Pipeline pipeline(*connection, &names);
    Must(pipeline.Send("SELECT 1 / x FROM generate_series(0, 0) x", {}));
    EXPECT_FALSE(pipeline.Receive());
    EXPECT_TRUE(pipeline.failure());
    EXPECT_FALSE(pipeline.Send("SELECT 1", {}));  // unusable after a failure
  }
  EXPECT_TRUE(connection->Reusable());
  postgres::Session session(*connection);
  EXPECT_EQ(Must(sql::SelectOne(session, "SELECT 7", sql::IntFromRow)), 7);
}

// A walk whose connection the server ends between two batches finishes by ListGroups, which
// connects afresh: every group once, in order.
TEST_F(PostgresMetadataStoreWithServer, AWalkWhoseConnectionWasEndedFinishesExactly) {
  PostgresBackend backend;
  Must(backend.Connect());  // the schema
  const std::string application = "dlipkg_walk_" + std::to_string(::getpid());
  auto store = Must(PostgresMetadataStore::Open(
      {.url = backend.Url() + "&application_name=" + application, .connections = 4}));
  std::vector<std::string> expected;
  for (const std::string name : {"g1", "g2", "g3", "g4", "g5"}) {
    Must(store->ReplaceGroup(Group("p1", name), {Package("p1", name, "a.py")}));
    expected.push_back(name);
  }
  const auto walk = store->WalkGroups("p1", {}, 2);
  std::vector<std::string> walked;
  for (int calls = 0; calls < 10; ++calls) {
    const auto batch = Must(walk->Next());
    for (const auto& g : batch.groups) walked.push_back(g.name);
    if (calls == 0) TerminateBackends(application);
    ASSERT_FALSE(HasFatalFailure());
    if (!batch.next_after) break;
  }
  EXPECT_EQ(walked, expected);
  EXPECT_EQ(Must(store->GetGroup("p1", "g5"))->packages.size(), 1u);
}

// A batch with an uploading package is read again, in a later state: when groups were added
// since the statement of the batch after it was sent ahead, the walk must not go on from that
// statement (it would skip the groups the batch read again no longer reaches).
TEST_F(PostgresMetadataStoreWithServer, AWalkGoesOnFromWhereABatchReadAgainEnds) {
  PostgresBackend backend;
  Must(backend.Connect());  // the schema
  const std::string application = "dlipkg_again_" + std::to_string(::getpid());
  auto store = Must(PostgresMetadataStore::Open(
      {.url = backend.Url() + "&application_name=" + application, .connections = 4}));
  for (const std::string name : {"a", "c", "d", "f"}) {
    auto package = Package("p1", name, "x.py");
    if (name == "d") {
      package.sha256 = "";
      package.status = PackageStatus::kUploading;
    }
    Must(store->ReplaceGroup(Group("p1", name), {package}));
  }
  const auto walk = store->WalkGroups("p1", {}, 2);
  auto first = Must(walk->Next());  // a, c; the statement of the batch after c is sent
  // Once the server has run it (its connection idle again), a group is added in its range.
  auto admin = Must(postgres::Connection::Open(test::TestPostgresUrl()));
  postgres::Session session(*admin);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Must(sql::SelectOne(session,
                             "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?1 "
                             "AND state = 'idle' AND query LIKE 'WITH g AS%' "
                             "AND query NOT LIKE '%ORDER BY g.name%'",
                             sql::IntFromRow, application)) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the batch was not read ahead";
    std::this_thread::yield();
  }
  Must(store->ReplaceGroup(Group("p1", "e"), {Package("p1", "e", "x.py")}));
  std::vector<std::string> walked = test::GroupNames(first.groups);
  for (int calls = 0; calls < 10 && first.next_after; ++calls) {
    first = Must(walk->Next());
    for (const auto& g : first.groups) walked.push_back(g.name);
  }
  EXPECT_EQ(walked, (std::vector<std::string>{"a", "c", "d", "e", "f"}));
}

// ---- A restart of PostgreSQL ----

// scripts/postgres.sh on the test cluster: "stop" or "start".
void Cluster(const std::string& action) {
  const std::string command = std::string(DLIPKG_SOURCE_DIR) + "/scripts/postgres.sh " + action +
                              " '" + std::getenv("DLIPKG_TEST_POSTGRES_DIR") + "' >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error(command + " failed");
}

// Runs `calls` GetGroup calls at once (so that as many pooled connections are in use) and
// returns how many failed.
int ConcurrentReadFailures(MetadataStore& store, int calls) {
  std::atomic<int> failures{0};
  std::latch start(calls);
  std::vector<std::thread> readers;
  for (int i = 0; i < calls; ++i) {
    readers.emplace_back([&] {
      start.arrive_and_wait();
      const auto group = store.GetGroup("p1", "g1");
      if (!group || !*group || (*group)->packages.size() != 1) ++failures;
    });
  }
  for (auto& t : readers) t.join();
  return failures.load();
}

TEST_F(PostgresMetadataStoreWithServer, CallsFailCleanlyWhilePostgresIsDownAndSucceedOnceItIsBack) {
  ASSERT_NE(std::getenv("DLIPKG_TEST_POSTGRES_DIR"), nullptr)
      << "DLIPKG_TEST_POSTGRES_DIR must name the cluster directory given to scripts/postgres.sh "
         "(scripts/test.sh sets it)";
  PostgresBackend backend;
  auto store = Must(backend.Connect());
  Must(store.metadata->ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store.jobs->EnqueueUploads(std::nullopt, {Package("p1", "", "x"), Package("p1", "", "y")},
                                  {"obs://b/x", "obs://b/y"}, 9'000'000, 100));
  const auto leased = *Must(store.jobs->ClaimJob("w1", 1000, 1'000'000));
  EXPECT_EQ(ConcurrentReadFailures(*store.metadata, 8), 0);  // 8 connections now in the pool

  Cluster("stop");
  struct Restarter {  // PostgreSQL is up again however this test ends
    ~Restarter() {
      try {
        Cluster("start");
      } catch (const std::exception&) {
      }
    }
  } restarter;

  const std::vector<std::string> secrets = {test::TestPostgresUrl(), "127.0.0.1", "postgres@"};
  const auto read = store.metadata->GetGroup("p1", "g1");
  ASSERT_FALSE(read);
  ExpectNoSecrets(read.error(), secrets);
  const auto write =
      store.metadata->MergeIntoGroup(Group("p1", "g1", 2000), {Package("p1", "g1", "b.py", 2000)});
  ASSERT_FALSE(write);
  ExpectNoSecrets(write.error(), secrets);
  const auto claim = store.jobs->ClaimJob("w2", 2000, 3000);
  ASSERT_FALSE(claim);
  ExpectNoSecrets(claim.error(), secrets);
  EXPECT_EQ(ConcurrentReadFailures(*store.metadata, 8), 8);

  Cluster("start");
  // Every call succeeds at once, although each pooled connection died with the server.
  EXPECT_EQ(ConcurrentReadFailures(*store.metadata, 8), 0);
  Must(
      store.metadata->MergeIntoGroup(Group("p1", "g1", 3000), {Package("p1", "g1", "c.py", 3000)}));
  EXPECT_EQ(test::Names(Must(store.metadata->GetGroup("p1", "g1"))->packages),
            (std::vector<std::string>{"a.py", "c.py"}));  // b.py's failed write left nothing
  // No job lost, and the lease taken before the restart still holds.
  EXPECT_EQ(Must(store.jobs->CountQueued()), 2u);
  EXPECT_TRUE(Must(store.jobs->RenewLease(leased.id, "w1", 1'000'000)));
  const auto other = Must(store.jobs->ClaimJob("w2", 2000, 3000));
  ASSERT_TRUE(other);
  EXPECT_NE(other->id, leased.id);
}

}  // namespace
}  // namespace dlipkg
