// The validated values the API builds once and the core trusts: each Parse refuses what the
// DLI rules refuse, with the message the client sees, and keeps the normalised text.
#include "domain/values.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

template <class T>
std::string ErrorOf(const Result<T>& result) {
  return result ? "" : result.error().message;
}

TEST(Values, NamesAreParsedOnceAndKeptNormalised) {
  EXPECT_EQ(GroupName::Parse("  g-1.x ")->str(), "g-1.x");
  EXPECT_EQ(ProjectId::Parse("p1")->str(), "p1");
  EXPECT_EQ(ResourceName::Parse("a b+c~d.py")->str(), "a b+c~d.py");
  EXPECT_EQ(OwnerName::Parse("alice")->str(), "alice");
  EXPECT_EQ(ErrorOf(GroupName::Parse("bad group")),
            "Invalid group name 'bad group': use 1-64 letters, digits, '.', '_' or '-'.");
  EXPECT_EQ(ProjectId::Parse("p-1").error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(ResourceName::Parse(".hidden").error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(ErrorOf(OwnerName::Parse("1x")),
            "Invalid owner '1x': use 5-32 letters, digits, '_' or '-', not starting with a digit.");
}

TEST(Values, ASourceGivesItsPackageName) {
  auto source = SourceUrl::Parse("https://b.obs.r.example.com/dir/a%20b.py?x=1");
  ASSERT_TRUE(source);
  EXPECT_EQ(source->url(), "https://b.obs.r.example.com/dir/a%20b.py?x=1");
  EXPECT_EQ(source->name().str(), "a b.py");
  EXPECT_NE(ErrorOf(SourceUrl::Parse("http://src/x/..")).find("Invalid path"), std::string::npos);
}

TEST(Values, SourceListsAreBoundedAndNamesDistinct) {
  auto list = SourceList::Parse({"http://s/a.py", "http://s/b.py"});
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Names(), (std::vector<std::string>{"a.py", "b.py"}));
  EXPECT_EQ(list->Urls(), (std::vector<std::string>{"http://s/a.py", "http://s/b.py"}));
  EXPECT_EQ(ErrorOf(SourceList::Parse({})), "paths must not be empty.");
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("http://s/m" + std::to_string(i) + ".py");
  EXPECT_EQ(ErrorOf(SourceList::Parse(many)), "paths has 101 entries; at most 100 are allowed.");
  many.pop_back();
  EXPECT_TRUE(SourceList::Parse(many));
  EXPECT_EQ(ErrorOf(SourceList::Parse({"http://s/a.py", "http://t/sub/a.py"})),
            "Duplicate resource name 'a.py' in paths: each package needs a distinct name.");
  // The first bad path in request order is the one reported.
  EXPECT_NE(ErrorOf(SourceList::Parse({"http://s/a.py", "http://s/.x", "http://s/"})).find(".x"),
            std::string::npos);
}

// The form (the API's TextRules) runs on the decoded name before the domain's rules, names are
// compared after it, and its refusal is the answer; the URL is kept as written.
TEST(Values, SourceNamesAreBroughtToTheFormBeforeTheyAreCompared) {
  const NameForm lower_e = [](std::string_view name) -> Result<std::string> {
    if (name.find('!') != std::string_view::npos)
      return Fail(ErrorCode::kBadRequest, "Invalid resource name: it contains '!'.");
    std::string out(name);
    for (char& c : out) c = c == 'E' ? 'e' : c;
    return out;
  };
  auto one = SourceList::Parse({"https://h/d/cafE.py"}, lower_e);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->items()[0].name().str(), "cafe.py");
  EXPECT_EQ(one->items()[0].url(), "https://h/d/cafE.py");
  EXPECT_EQ(ErrorOf(SourceList::Parse({"https://h/a/cafE.py", "https://h/b/cafe.py"}, lower_e)),
            "Duplicate resource name 'cafe.py' in paths: each package needs a distinct name.");
  EXPECT_TRUE(SourceList::Parse({"https://h/a/cafE.py", "https://h/b/cafe.py"}));  // no form
  EXPECT_EQ(ErrorOf(SourceList::Parse({"https://h/a/x%21.py"}, lower_e)),
            "Invalid resource name: it contains '!'.");
}

TEST(Values, TagListsFollowTheTagRules) {
  EXPECT_EQ(TagList::Parse({{"team", "x"}, {"env", ""}})->items().size(), 2u);
  EXPECT_TRUE(TagList().items().empty());
  EXPECT_EQ(TagList::Parse({{"_sys_x", "v"}}).error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(ErrorOf(TagList::Parse({{"k", "1"}, {"k", "2"}})), "Duplicate tag key 'k'.");
  EXPECT_EQ(ErrorOf(TagList::Parse(std::vector<Tag>(21, Tag{"k", "v"}))),
            "Too many tags: at most 20 per request.");
}

}  // namespace
}  // namespace dlipkg
