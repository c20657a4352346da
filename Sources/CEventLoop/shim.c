// Everything is inline in include/CEventLoop.h; SwiftPM needs one source file per C target.
#include "CEventLoop.h"
