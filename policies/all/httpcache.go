package all

import _ "github.com/flexgate/flexgate/policies/httpcache"
