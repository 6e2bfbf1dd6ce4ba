// The PostgreSQL adapter's pure helpers: placeholders, connection strings completed without
// echoing them, and libpq's errors classed and worded without hosts or secrets. No server needed.

#include "adapters/metadata/postgres/postgres_db.hpp"

#include <gtest/gtest.h>

namespace dlipkg::postgres {
namespace {

TEST(DollarPlaceholders, RewritesNumberedPlaceholdersOutsideQuotes) {
  EXPECT_EQ(DollarPlaceholders("SELECT a FROM t WHERE x = ?1 AND y = ?12"),
            "SELECT a FROM t WHERE x = $1 AND y = $12");
  EXPECT_EQ(DollarPlaceholders("UPDATE t SET r = 'why?1 it''s ?2' WHERE id = ?3"),
            "UPDATE t SET r = 'why?1 it''s ?2' WHERE id = $3");
  EXPECT_EQ(DollarPlaceholders("SELECT ? , ?x"), "SELECT ? , ?x");
}

TEST(CompleteConnectionString, AddsATimeoutAndANameUnlessGiven) {
  const auto completed = CompleteConnectionString("postgresql://u:p%27w@db.example:6543/meta");
  ASSERT_TRUE(completed);
  EXPECT_NE(completed->find("host='db.example'"), std::string::npos) << *completed;
  EXPECT_NE(completed->find("port='6543'"), std::string::npos);
  EXPECT_NE(completed->find("password='p\\'w'"), std::string::npos) << *completed;
  EXPECT_NE(completed->find("connect_timeout=10"), std::string::npos);
  EXPECT_NE(completed->find("application_name=dlipkg"), std::string::npos);

  const auto own =
      CompleteConnectionString("postgresql://db/meta?connect_timeout=3&application_name=mine");
  ASSERT_TRUE(own);
  EXPECT_NE(own->find("connect_timeout='3'"), std::string::npos) << *own;
  EXPECT_EQ(own->find("connect_timeout=10"), std::string::npos) << *own;
  EXPECT_EQ(own->find("dlipkg"), std::string::npos) << *own;

  EXPECT_TRUE(CompleteConnectionString("host=db dbname=meta"));  // key=value form too
  EXPECT_FALSE(CompleteConnectionString("postgresql://db/meta?no_such_option=1"));
  EXPECT_FALSE(CompleteConnectionString("host=db dbname"));
}

TEST(Classify, ConnectionLossIsToldApartFromConflictsAndStatementErrors) {
  const auto lost =
      Classify("",
               "connection to server at \"10.1.2.3\", port 5432 failed: Connection refused\n"
               "\tIs the server running on that host and accepting TCP/IP connections?\n",
               /*connection_lost=*/true);
  EXPECT_EQ(lost.kind, FailureKind::kConnection);
  EXPECT_EQ(lost.error.code, ErrorCode::kInternal);
  EXPECT_EQ(lost.error.message,
            "metadata store failure: PostgreSQL unreachable: Connection refused");

  // The server's own word that it is going away, before libpq has seen the connection close.
  const auto shutdown =
      Classify("57P01", "FATAL:  terminating connection due to administrator command\n", false);
  EXPECT_EQ(shutdown.kind, FailureKind::kConnection);
  EXPECT_EQ(shutdown.error.message,
            "metadata store failure: PostgreSQL unreachable: terminating connection due to "
            "administrator command");

  EXPECT_EQ(Classify("40001", "ERROR:  could not serialize", false).kind, FailureKind::kConflict);
  EXPECT_EQ(Classify("40P01", "ERROR:  deadlock detected", false).kind, FailureKind::kConflict);
  const auto in_doubt = Classify("", "server closed the connection unexpectedly\n", true,
                                 /*committing=*/true);
  EXPECT_EQ(in_doubt.kind, FailureKind::kInDoubt);
  EXPECT_TRUE(in_doubt.error.retryable);
  // A COMMIT the server refused with the connection up was not made: not in doubt.
  EXPECT_EQ(Classify("23505", "ERROR:  duplicate key", false, /*committing=*/true).kind,
            FailureKind::kStatement);

  const auto constraint =
      Classify("23505",
               "ERROR:  duplicate key value violates unique constraint \"packages_pkey\"\n"
               "DETAIL:  Key (project)=(p1) already exists.\n",
               false);
  EXPECT_EQ(constraint.kind, FailureKind::kStatement);
  EXPECT_FALSE(constraint.error.retryable);
  EXPECT_EQ(constraint.error.message,
            "metadata store failure: duplicate key value violates unique constraint "
            "\"packages_pkey\"");
}

}  // namespace
}  // namespace dlipkg::postgres
