import ChatLedgerCLI

#if canImport(Glibc)
import Glibc
#endif

// The executable only hands the arguments to the command line and exits with its status.
let status = ChatLedgerCommand.main(Array(CommandLine.arguments.dropFirst()))
fflush(nil)
exit(status)
