/* The intrinsics are inline functions in the header; SwiftPM needs one source file. */
#include "CLedgerIntrinsics.h"
