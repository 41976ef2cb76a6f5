#pragma once
// The `phatgoose` command line: one function per subcommand, dispatched by name. The app's main() is a
// one-liner around runCli; tests call runCli directly with string streams.
#include <iosfwd>
#include <string>
#include <vector>

namespace phatgoose {

// args[0] is the subcommand. Returns the process exit code: 0 success, 1 a failure reported on `err`,
// 2 a usage error.
int runCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace phatgoose
