// xxHash's C interface (Debian: libxxhash-dev, pkg-config "libxxhash"): XXH3-128 for the
// checksums of checkpoint files.
#include <xxhash.h>
