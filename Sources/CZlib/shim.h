// zlib (pkg-config `zlib`, Debian/Ubuntu `zlib1g-dev`): inflate for gzip-compressed IDX files.
#include <zlib.h>
