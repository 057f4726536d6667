package kv

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// subcommandCases are every container command of Redis 7.0.15 (but
// MODULE, whose cases are in TestModuleCommand) with an unknown subcommand, and
// each of its subcommands with one argument too few and one too many, and
// calls its command table lets through that the command refuses itself
// (SLOWLOG GET 1 2), with redis-server 7.0.15's replies.
var subcommandCases = []struct {
	args []string
	want string
}{
	{[]string{"acl"}, "-ERR wrong number of arguments for 'acl' command\r\n"},
	{[]string{"acl", "foo"}, "-ERR unknown subcommand 'foo'. Try ACL HELP.\r\n"},
	{[]string{"ACL", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try ACL HELP.\r\n"},
	{[]string{"acl", "deluser"}, "-ERR wrong number of arguments for 'acl|deluser' command\r\n"},
	{[]string{"acl", "dryrun", "a"}, "-ERR wrong number of arguments for 'acl|dryrun' command\r\n"},
	{[]string{"acl", "getuser"}, "-ERR wrong number of arguments for 'acl|getuser' command\r\n"},
	{[]string{"acl", "GETUSER", "a", "a"}, "-ERR wrong number of arguments for 'acl|getuser' command\r\n"},
	{[]string{"acl", "HELP", "a"}, "-ERR wrong number of arguments for 'acl|help' command\r\n"},
	{[]string{"acl", "LIST", "a"}, "-ERR wrong number of arguments for 'acl|list' command\r\n"},
	{[]string{"acl", "LOAD", "a"}, "-ERR wrong number of arguments for 'acl|load' command\r\n"},
	{[]string{"acl", "SAVE", "a"}, "-ERR wrong number of arguments for 'acl|save' command\r\n"},
	{[]string{"acl", "setuser"}, "-ERR wrong number of arguments for 'acl|setuser' command\r\n"},
	{[]string{"acl", "USERS", "a"}, "-ERR wrong number of arguments for 'acl|users' command\r\n"},
	{[]string{"acl", "WHOAMI", "a"}, "-ERR wrong number of arguments for 'acl|whoami' command\r\n"},
	{[]string{"client"}, "-ERR wrong number of arguments for 'client' command\r\n"},
	{[]string{"client", "foo"}, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"},
	{[]string{"CLIENT", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try CLIENT HELP.\r\n"},
	{[]string{"client", "caching"}, "-ERR wrong number of arguments for 'client|caching' command\r\n"},
	{[]string{"client", "CACHING", "a", "a"}, "-ERR wrong number of arguments for 'client|caching' command\r\n"},
	{[]string{"client", "GETNAME", "a"}, "-ERR wrong number of arguments for 'client|getname' command\r\n"},
	{[]string{"client", "GETREDIR", "a"}, "-ERR wrong number of arguments for 'client|getredir' command\r\n"},
	{[]string{"client", "HELP", "a"}, "-ERR wrong number of arguments for 'client|help' command\r\n"},
	{[]string{"client", "ID", "a"}, "-ERR wrong number of arguments for 'client|id' command\r\n"},
	{[]string{"client", "INFO", "a"}, "-ERR wrong number of arguments for 'client|info' command\r\n"},
	{[]string{"client", "kill"}, "-ERR wrong number of arguments for 'client|kill' command\r\n"},
	{[]string{"client", "no-evict"}, "-ERR wrong number of arguments for 'client|no-evict' command\r\n"},
	{[]string{"client", "NO-EVICT", "a", "a"}, "-ERR wrong number of arguments for 'client|no-evict' command\r\n"},
	{[]string{"client", "pause"}, "-ERR wrong number of arguments for 'client|pause' command\r\n"},
	{[]string{"client", "reply"}, "-ERR wrong number of arguments for 'client|reply' command\r\n"},
	{[]string{"client", "REPLY", "a", "a"}, "-ERR wrong number of arguments for 'client|reply' command\r\n"},
	{[]string{"client", "setname"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
	{[]string{"client", "SETNAME", "a", "a"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
	{[]string{"client", "tracking"}, "-ERR wrong number of arguments for 'client|tracking' command\r\n"},
	{[]string{"client", "TRACKINGINFO", "a"}, "-ERR wrong number of arguments for 'client|trackinginfo' command\r\n"},
	{[]string{"client", "unblock"}, "-ERR wrong number of arguments for 'client|unblock' command\r\n"},
	{[]string{"client", "UNPAUSE", "a"}, "-ERR wrong number of arguments for 'client|unpause' command\r\n"},
	{[]string{"cluster"}, "-ERR wrong number of arguments for 'cluster' command\r\n"},
	{[]string{"cluster", "foo"}, "-ERR unknown subcommand 'foo'. Try CLUSTER HELP.\r\n"},
	{[]string{"CLUSTER", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try CLUSTER HELP.\r\n"},
	{[]string{"cluster", "addslots"}, "-ERR wrong number of arguments for 'cluster|addslots' command\r\n"},
	{[]string{"cluster", "addslotsrange", "a"}, "-ERR wrong number of arguments for 'cluster|addslotsrange' command\r\n"},
	{[]string{"cluster", "BUMPEPOCH", "a"}, "-ERR wrong number of arguments for 'cluster|bumpepoch' command\r\n"},
	{[]string{"cluster", "count-failure-reports"}, "-ERR wrong number of arguments for 'cluster|count-failure-reports' command\r\n"},
	{[]string{"cluster", "COUNT-FAILURE-REPORTS", "a", "a"}, "-ERR wrong number of arguments for 'cluster|count-failure-reports' command\r\n"},
	{[]string{"cluster", "countkeysinslot"}, "-ERR wrong number of arguments for 'cluster|countkeysinslot' command\r\n"},
	{[]string{"cluster", "COUNTKEYSINSLOT", "a", "a"}, "-ERR wrong number of arguments for 'cluster|countkeysinslot' command\r\n"},
	{[]string{"cluster", "delslots"}, "-ERR wrong number of arguments for 'cluster|delslots' command\r\n"},
	{[]string{"cluster", "delslotsrange", "a"}, "-ERR wrong number of arguments for 'cluster|delslotsrange' command\r\n"},
	{[]string{"cluster", "FLUSHSLOTS", "a"}, "-ERR wrong number of arguments for 'cluster|flushslots' command\r\n"},
	{[]string{"cluster", "forget"}, "-ERR wrong number of arguments for 'cluster|forget' command\r\n"},
	{[]string{"cluster", "FORGET", "a", "a"}, "-ERR wrong number of arguments for 'cluster|forget' command\r\n"},
	{[]string{"cluster", "getkeysinslot", "a"}, "-ERR wrong number of arguments for 'cluster|getkeysinslot' command\r\n"},
	{[]string{"cluster", "GETKEYSINSLOT", "a", "a", "a"}, "-ERR wrong number of arguments for 'cluster|getkeysinslot' command\r\n"},
	{[]string{"cluster", "HELP", "a"}, "-ERR wrong number of arguments for 'cluster|help' command\r\n"},
	{[]string{"cluster", "INFO", "a"}, "-ERR wrong number of arguments for 'cluster|info' command\r\n"},
	{[]string{"cluster", "keyslot"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
	{[]string{"cluster", "KEYSLOT", "a", "a"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
	{[]string{"cluster", "LINKS", "a"}, "-ERR wrong number of arguments for 'cluster|links' command\r\n"},
	{[]string{"cluster", "meet", "a"}, "-ERR wrong number of arguments for 'cluster|meet' command\r\n"},
	{[]string{"cluster", "MYID", "a"}, "-ERR wrong number of arguments for 'cluster|myid' command\r\n"},
	{[]string{"cluster", "NODES", "a"}, "-ERR wrong number of arguments for 'cluster|nodes' command\r\n"},
	{[]string{"cluster", "replicas"}, "-ERR wrong number of arguments for 'cluster|replicas' command\r\n"},
	{[]string{"cluster", "REPLICAS", "a", "a"}, "-ERR wrong number of arguments for 'cluster|replicas' command\r\n"},
	{[]string{"cluster", "replicate"}, "-ERR wrong number of arguments for 'cluster|replicate' command\r\n"},
	{[]string{"cluster", "REPLICATE", "a", "a"}, "-ERR wrong number of arguments for 'cluster|replicate' command\r\n"},
	{[]string{"cluster", "SAVECONFIG", "a"}, "-ERR wrong number of arguments for 'cluster|saveconfig' command\r\n"},
	{[]string{"cluster", "set-config-epoch"}, "-ERR wrong number of arguments for 'cluster|set-config-epoch' command\r\n"},
	{[]string{"cluster", "SET-CONFIG-EPOCH", "a", "a"}, "-ERR wrong number of arguments for 'cluster|set-config-epoch' command\r\n"},
	{[]string{"cluster", "setslot", "a"}, "-ERR wrong number of arguments for 'cluster|setslot' command\r\n"},
	{[]string{"cluster", "SHARDS", "a"}, "-ERR wrong number of arguments for 'cluster|shards' command\r\n"},
	{[]string{"cluster", "slaves"}, "-ERR wrong number of arguments for 'cluster|slaves' command\r\n"},
	{[]string{"cluster", "SLAVES", "a", "a"}, "-ERR wrong number of arguments for 'cluster|slaves' command\r\n"},
	{[]string{"cluster", "SLOTS", "a"}, "-ERR wrong number of arguments for 'cluster|slots' command\r\n"},
	{[]string{"command", "foo"}, "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n"},
	{[]string{"COMMAND", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try COMMAND HELP.\r\n"},
	{[]string{"command", "COUNT", "a"}, "-ERR wrong number of arguments for 'command|count' command\r\n"},
	{[]string{"command", "getkeys", "a"}, "-ERR wrong number of arguments for 'command|getkeys' command\r\n"},
	{[]string{"command", "getkeysandflags", "a"}, "-ERR wrong number of arguments for 'command|getkeysandflags' command\r\n"},
	{[]string{"command", "HELP", "a"}, "-ERR wrong number of arguments for 'command|help' command\r\n"},
	{[]string{"config"}, "-ERR wrong number of arguments for 'config' command\r\n"},
	{[]string{"config", "foo"}, "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n"},
	{[]string{"CONFIG", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try CONFIG HELP.\r\n"},
	{[]string{"config", "get"}, "-ERR wrong number of arguments for 'config|get' command\r\n"},
	{[]string{"config", "HELP", "a"}, "-ERR wrong number of arguments for 'config|help' command\r\n"},
	{[]string{"config", "RESETSTAT", "a"}, "-ERR wrong number of arguments for 'config|resetstat' command\r\n"},
	{[]string{"config", "REWRITE", "a"}, "-ERR wrong number of arguments for 'config|rewrite' command\r\n"},
	{[]string{"config", "set", "a"}, "-ERR wrong number of arguments for 'config|set' command\r\n"},
	{[]string{"function"}, "-ERR wrong number of arguments for 'function' command\r\n"},
	{[]string{"function", "foo"}, "-ERR unknown subcommand 'foo'. Try FUNCTION HELP.\r\n"},
	{[]string{"FUNCTION", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try FUNCTION HELP.\r\n"},
	{[]string{"function", "delete"}, "-ERR wrong number of arguments for 'function|delete' command\r\n"},
	{[]string{"function", "DELETE", "a", "a"}, "-ERR wrong number of arguments for 'function|delete' command\r\n"},
	{[]string{"function", "DUMP", "a"}, "-ERR wrong number of arguments for 'function|dump' command\r\n"},
	{[]string{"function", "HELP", "a"}, "-ERR wrong number of arguments for 'function|help' command\r\n"},
	{[]string{"function", "KILL", "a"}, "-ERR wrong number of arguments for 'function|kill' command\r\n"},
	{[]string{"function", "load"}, "-ERR wrong number of arguments for 'function|load' command\r\n"},
	{[]string{"function", "restore"}, "-ERR wrong number of arguments for 'function|restore' command\r\n"},
	{[]string{"function", "STATS", "a"}, "-ERR wrong number of arguments for 'function|stats' command\r\n"},
	{[]string{"latency"}, "-ERR wrong number of arguments for 'latency' command\r\n"},
	{[]string{"latency", "foo"}, "-ERR unknown subcommand 'foo'. Try LATENCY HELP.\r\n"},
	{[]string{"LATENCY", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try LATENCY HELP.\r\n"},
	{[]string{"latency", "DOCTOR", "a"}, "-ERR wrong number of arguments for 'latency|doctor' command\r\n"},
	{[]string{"latency", "graph"}, "-ERR wrong number of arguments for 'latency|graph' command\r\n"},
	{[]string{"latency", "GRAPH", "a", "a"}, "-ERR wrong number of arguments for 'latency|graph' command\r\n"},
	{[]string{"latency", "HELP", "a"}, "-ERR wrong number of arguments for 'latency|help' command\r\n"},
	{[]string{"latency", "history"}, "-ERR wrong number of arguments for 'latency|history' command\r\n"},
	{[]string{"latency", "HISTORY", "a", "a"}, "-ERR wrong number of arguments for 'latency|history' command\r\n"},
	{[]string{"latency", "LATEST", "a"}, "-ERR wrong number of arguments for 'latency|latest' command\r\n"},
	{[]string{"memory"}, "-ERR wrong number of arguments for 'memory' command\r\n"},
	{[]string{"memory", "foo"}, "-ERR unknown subcommand 'foo'. Try MEMORY HELP.\r\n"},
	{[]string{"MEMORY", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try MEMORY HELP.\r\n"},
	{[]string{"memory", "DOCTOR", "a"}, "-ERR wrong number of arguments for 'memory|doctor' command\r\n"},
	{[]string{"memory", "HELP", "a"}, "-ERR wrong number of arguments for 'memory|help' command\r\n"},
	{[]string{"memory", "MALLOC-STATS", "a"}, "-ERR wrong number of arguments for 'memory|malloc-stats' command\r\n"},
	{[]string{"memory", "PURGE", "a"}, "-ERR wrong number of arguments for 'memory|purge' command\r\n"},
	{[]string{"memory", "STATS", "a"}, "-ERR wrong number of arguments for 'memory|stats' command\r\n"},
	{[]string{"memory", "usage"}, "-ERR wrong number of arguments for 'memory|usage' command\r\n"},
	{[]string{"object"}, "-ERR wrong number of arguments for 'object' command\r\n"},
	{[]string{"object", "foo"}, "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n"},
	{[]string{"OBJECT", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try OBJECT HELP.\r\n"},
	{[]string{"object", "encoding"}, "-ERR wrong number of arguments for 'object|encoding' command\r\n"},
	{[]string{"object", "ENCODING", "a", "a"}, "-ERR wrong number of arguments for 'object|encoding' command\r\n"},
	{[]string{"object", "freq"}, "-ERR wrong number of arguments for 'object|freq' command\r\n"},
	{[]string{"object", "FREQ", "a", "a"}, "-ERR wrong number of arguments for 'object|freq' command\r\n"},
	{[]string{"object", "HELP", "a"}, "-ERR wrong number of arguments for 'object|help' command\r\n"},
	{[]string{"object", "idletime"}, "-ERR wrong number of arguments for 'object|idletime' command\r\n"},
	{[]string{"object", "IDLETIME", "a", "a"}, "-ERR wrong number of arguments for 'object|idletime' command\r\n"},
	{[]string{"object", "refcount"}, "-ERR wrong number of arguments for 'object|refcount' command\r\n"},
	{[]string{"object", "REFCOUNT", "a", "a"}, "-ERR wrong number of arguments for 'object|refcount' command\r\n"},
	{[]string{"pubsub"}, "-ERR wrong number of arguments for 'pubsub' command\r\n"},
	{[]string{"pubsub", "foo"}, "-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n"},
	{[]string{"PUBSUB", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try PUBSUB HELP.\r\n"},
	{[]string{"pubsub", "HELP", "a"}, "-ERR wrong number of arguments for 'pubsub|help' command\r\n"},
	{[]string{"pubsub", "NUMPAT", "a"}, "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"},
	{[]string{"script"}, "-ERR wrong number of arguments for 'script' command\r\n"},
	{[]string{"script", "foo"}, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n"},
	{[]string{"SCRIPT", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try SCRIPT HELP.\r\n"},
	{[]string{"script", "debug"}, "-ERR wrong number of arguments for 'script|debug' command\r\n"},
	{[]string{"script", "DEBUG", "a", "a"}, "-ERR wrong number of arguments for 'script|debug' command\r\n"},
	{[]string{"script", "exists"}, "-ERR wrong number of arguments for 'script|exists' command\r\n"},
	{[]string{"script", "HELP", "a"}, "-ERR wrong number of arguments for 'script|help' command\r\n"},
	{[]string{"script", "KILL", "a"}, "-ERR wrong number of arguments for 'script|kill' command\r\n"},
	{[]string{"script", "load"}, "-ERR wrong number of arguments for 'script|load' command\r\n"},
	{[]string{"script", "LOAD", "a", "a"}, "-ERR wrong number of arguments for 'script|load' command\r\n"},
	{[]string{"slowlog"}, "-ERR wrong number of arguments for 'slowlog' command\r\n"},
	{[]string{"slowlog", "foo"}, "-ERR unknown subcommand 'foo'. Try SLOWLOG HELP.\r\n"},
	{[]string{"SLOWLOG", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try SLOWLOG HELP.\r\n"},
	{[]string{"slowlog", "HELP", "a"}, "-ERR wrong number of arguments for 'slowlog|help' command\r\n"},
	{[]string{"slowlog", "LEN", "a"}, "-ERR wrong number of arguments for 'slowlog|len' command\r\n"},
	{[]string{"slowlog", "RESET", "a"}, "-ERR wrong number of arguments for 'slowlog|reset' command\r\n"},
	{[]string{"xgroup"}, "-ERR wrong number of arguments for 'xgroup' command\r\n"},
	{[]string{"xgroup", "foo"}, "-ERR unknown subcommand 'foo'. Try XGROUP HELP.\r\n"},
	{[]string{"XGROUP", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try XGROUP HELP.\r\n"},
	{[]string{"xgroup", "create", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|create' command\r\n"},
	{[]string{"xgroup", "createconsumer", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|createconsumer' command\r\n"},
	{[]string{"xgroup", "CREATECONSUMER", "a", "a", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|createconsumer' command\r\n"},
	{[]string{"xgroup", "delconsumer", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|delconsumer' command\r\n"},
	{[]string{"xgroup", "DELCONSUMER", "a", "a", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|delconsumer' command\r\n"},
	{[]string{"xgroup", "destroy", "a"}, "-ERR wrong number of arguments for 'xgroup|destroy' command\r\n"},
	{[]string{"xgroup", "DESTROY", "a", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|destroy' command\r\n"},
	{[]string{"xgroup", "HELP", "a"}, "-ERR wrong number of arguments for 'xgroup|help' command\r\n"},
	{[]string{"xgroup", "setid", "a", "a"}, "-ERR wrong number of arguments for 'xgroup|setid' command\r\n"},
	{[]string{"xinfo"}, "-ERR wrong number of arguments for 'xinfo' command\r\n"},
	{[]string{"xinfo", "foo"}, "-ERR unknown subcommand 'foo'. Try XINFO HELP.\r\n"},
	{[]string{"XINFO", "NoSuch", "x"}, "-ERR unknown subcommand 'NoSuch'. Try XINFO HELP.\r\n"},
	{[]string{"xinfo", "consumers", "a"}, "-ERR wrong number of arguments for 'xinfo|consumers' command\r\n"},
	{[]string{"xinfo", "CONSUMERS", "a", "a", "a"}, "-ERR wrong number of arguments for 'xinfo|consumers' command\r\n"},
	{[]string{"xinfo", "groups"}, "-ERR wrong number of arguments for 'xinfo|groups' command\r\n"},
	{[]string{"xinfo", "GROUPS", "a", "a"}, "-ERR wrong number of arguments for 'xinfo|groups' command\r\n"},
	{[]string{"xinfo", "HELP", "a"}, "-ERR wrong number of arguments for 'xinfo|help' command\r\n"},
	{[]string{"xinfo", "stream"}, "-ERR wrong number of arguments for 'xinfo|stream' command\r\n"},
	{[]string{"debug"}, "-ERR wrong number of arguments for 'debug' command\r\n"},
	{[]string{"debug", "foo"}, "-ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.\r\n"},
	{[]string{"debug", "foo", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.\r\n"},
	{[]string{"object", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}, "-ERR unknown subcommand 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'. Try OBJECT HELP.\r\n"},
	{[]string{"script", "a\r\nb"}, "-ERR unknown subcommand 'a  b'. Try SCRIPT HELP.\r\n"},
	{[]string{"script", "a\x00b"}, "-ERR unknown subcommand 'a'. Try SCRIPT HELP.\r\n"},
	{[]string{"acl", "cat", "a"}, "-ERR Unknown category 'a'\r\n"},
	{[]string{"acl", "cat", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'cat'. Try ACL HELP.\r\n"},
	{[]string{"acl", "dryrun", "a", "a"}, "-ERR User 'a' not found\r\n"},
	{[]string{"acl", "dryrun", "a", "a", "a"}, "-ERR User 'a' not found\r\n"},
	{[]string{"acl", "dryrun", "a", "a", "a", "a", "a", "a"}, "-ERR User 'a' not found\r\n"},
	{[]string{"acl", "genpass", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'genpass'. Try ACL HELP.\r\n"},
	{[]string{"acl", "log", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'log'. Try ACL HELP.\r\n"},
	{[]string{"acl", "setuser", "a", "a"}, "-ERR Error in ACL SETUSER modifier 'a': Syntax error\r\n"},
	{[]string{"acl", "setuser", "a", "a", "a", "a", "a"}, "-ERR Error in ACL SETUSER modifier 'a': Syntax error\r\n"},
	{[]string{"client", "kill", "a"}, "-ERR No such client\r\n"},
	{[]string{"client", "kill", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "kill", "a", "a", "a", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "list", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "list", "a", "a", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "pause", "a"}, "-ERR timeout is not an integer or out of range\r\n"},
	{[]string{"client", "pause", "a", "a"}, "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"},
	{[]string{"client", "pause", "a", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.\r\n"},
	{[]string{"client", "tracking", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "tracking", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "tracking", "a", "a", "a", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"client", "unblock", "a"}, "-ERR value is not an integer or out of range\r\n"},
	{[]string{"client", "unblock", "a", "a"}, "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
	{[]string{"client", "unblock", "a", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.\r\n"},
	{[]string{"command", "getkeys", "a", "a"}, "-ERR Invalid command specified\r\n"},
	{[]string{"command", "getkeys", "a", "a", "a"}, "-ERR Invalid command specified\r\n"},
	{[]string{"command", "getkeys", "a", "a", "a", "a", "a", "a"}, "-ERR Invalid command specified\r\n"},
	{[]string{"config", "set", "a", "a"}, "-ERR Unknown option or number of arguments for CONFIG SET - 'a'\r\n"},
	{[]string{"config", "set", "a", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"config", "set", "a", "a", "a", "a", "a", "a"}, "-ERR Unknown option or number of arguments for CONFIG SET - 'a'\r\n"},
	{[]string{"function", "flush", "a"}, "-ERR FUNCTION FLUSH only supports SYNC|ASYNC option\r\n"},
	{[]string{"function", "flush", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.\r\n"},
	{[]string{"function", "list", "a"}, "-ERR Unknown argument a\r\n"},
	{[]string{"function", "list", "a", "a", "a", "a"}, "-ERR Unknown argument a\r\n"},
	{[]string{"function", "load", "a"}, "-ERR Missing library metadata\r\n"},
	{[]string{"function", "load", "a", "a"}, "-ERR Unknown option given: a\r\n"},
	{[]string{"function", "load", "a", "a", "a", "a", "a"}, "-ERR Unknown option given: a\r\n"},
	{[]string{"function", "restore", "a", "a"}, "-ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.\r\n"},
	{[]string{"function", "restore", "a", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.\r\n"},
	{[]string{"memory", "usage", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"memory", "usage", "a", "a", "a", "a", "a"}, "-ERR syntax error\r\n"},
	{[]string{"pubsub", "channels", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.\r\n"},
	{[]string{"pubsub", "shardchannels", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'shardchannels'. Try PUBSUB HELP.\r\n"},
	{[]string{"script", "flush", "a"}, "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"},
	{[]string{"script", "flush", "a", "a", "a", "a"}, "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"},
	{[]string{"slowlog", "get", "a"}, "-ERR count should be greater than or equal to -1\r\n"},
	{[]string{"slowlog", "get", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n"},
	{[]string{"xgroup", "create", "a", "a", "a"}, "-ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.\r\n"},
	{[]string{"xgroup", "create", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP.\r\n"},
	{[]string{"xgroup", "create", "a", "a", "a", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP.\r\n"},
	{[]string{"xgroup", "setid", "a", "a", "a"}, "-ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.\r\n"},
	{[]string{"xgroup", "setid", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'setid'. Try XGROUP HELP.\r\n"},
	{[]string{"xgroup", "setid", "a", "a", "a", "a", "a", "a", "a"}, "-ERR unknown subcommand or wrong number of arguments for 'setid'. Try XGROUP HELP.\r\n"},
	{[]string{"xinfo", "stream", "a"}, "-ERR no such key\r\n"},
	{[]string{"xinfo", "stream", "a", "a"}, "-ERR no such key\r\n"},
	{[]string{"xinfo", "stream", "a", "a", "a", "a", "a"}, "-ERR no such key\r\n"},
	{[]string{"slowlog", "get", "1", "2"}, "-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n"},
	{[]string{"client", "pause", "10", "all", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.\r\n"},
	{[]string{"client", "unblock", "1", "error", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.\r\n"},
	{[]string{"client", "pause", "-1"}, "-ERR timeout is negative\r\n"},
	{[]string{"client", "pause", "x", "y"}, "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"},
	{[]string{"client", "unblock", "x", "y"}, "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
	{[]string{"script", "flush", "async", "x"}, "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"},
	{[]string{"config", "set", "maxmemory", "0", "x"}, "-ERR syntax error\r\n"},
	{[]string{"xinfo", "stream", "k", "full", "x", "1"}, "-ERR no such key\r\n"},
	{[]string{"pubsub", "channels", "a", "b"}, "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.\r\n"},
	{[]string{"function", "flush", "async", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.\r\n"},
	{[]string{"function", "restore", "a", "replace", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.\r\n"},
	{[]string{"acl", "cat", "a", "b"}, "-ERR unknown subcommand or wrong number of arguments for 'cat'. Try ACL HELP.\r\n"},
	{[]string{"OBJECT", "Encoding"}, "-ERR wrong number of arguments for 'object|encoding' command\r\n"},
	{[]string{"Client", "KILL"}, "-ERR wrong number of arguments for 'client|kill' command\r\n"},
	{[]string{"script", "\xc3\xbf\xc3\xbe"}, "-ERR unknown subcommand '\xc3\xbf\xc3\xbe'. Try SCRIPT HELP.\r\n"},
}

// TestSubcommandErrors: an unknown subcommand, or a wrong number of
// arguments for a known one, is refused before the command runs, with
// Redis's errors, byte for byte.
func TestSubcommandErrors(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	r := e.raw()
	for _, tt := range subcommandCases {
		if got := untilPong(t, r, respArray(tt.args...)); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestSubcommandErrorsMulti: inside MULTI the refusal comes when the
// command is queued and EXEC aborts; a call the table lets through is
// queued and fails in EXEC (Redis 7.0.15's replies).
func TestSubcommandErrorsMulti(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SCRIPT", "foo"}, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n"},
		{[]string{"ACL", "WHOAMI", "x"}, "-ERR wrong number of arguments for 'acl|whoami' command\r\n"},
		{[]string{"SET", "k", "v"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"GET", "k"}, "$-1\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"OBJECT"}, "-ERR wrong number of arguments for 'object' command\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SLOWLOG", "GET", "1", "2"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "*1\r\n-ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.\r\n"},
	} {
		r.roundTrip(respArray(step.args...), step.want)
	}
}

// TestSubcommandErrorsScript: a script's call of an unknown subcommand
// is an unknown command, one with a wrong number of arguments a wrong
// number of arguments (Redis 7.0.15's replies).
func TestSubcommandErrorsScript(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	for _, tt := range []struct{ script, want string }{
		{"return redis.call('script','foo')", "-ERR Unknown Redis command called from script script: f5e141e89aa1d959cab80c06988d384687718216, on @user_script:1.\r\n"},
		{"return redis.pcall('script','foo')", "-ERR Unknown Redis command called from script\r\n"},
		{"return redis.call('acl','whoami','x')", "-ERR Wrong number of args calling Redis command from script script: c87eb56fa9ba4cd1f3be0c3f00ed7c738b0f6be7, on @user_script:1.\r\n"},
		{"return redis.pcall('acl','whoami','x')", "-ERR Wrong number of args calling Redis command from script\r\n"},
		{"return redis.call('object')", "-ERR Wrong number of args calling Redis command from script script: 26deaca16991823793a5afb3896b485575b3b060, on @user_script:1.\r\n"},
		{"return redis.pcall('config','foo')", "-ERR Unknown Redis command called from script\r\n"},
		{"return redis.pcall('config','get')", "-ERR Wrong number of args calling Redis command from script\r\n"},
		{"return redis.pcall('slowlog','get','1','2')", "-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n"},
	} {
		r.roundTrip(respArray("EVAL", tt.script, "0"), tt.want)
	}
}

var usecField = regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+,`)

// TestSubcommandErrorStats: a refused known subcommand is a rejected call
// of the subcommand, an unknown one is no command's call (errorstats
// only), and a failed call is the subcommand's: INFO commandstats and
// errorstats as redis-server 7.0.15 shows them after the same commands.
func TestSubcommandErrorStats(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	e.rdb.Ping(t.Context()) // connected (HELLO) before CONFIG RESETSTAT
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"CONFIG", "RESETSTAT"}, "+OK\r\n"},
		{[]string{"SCRIPT", "foo"}, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n"},
		{[]string{"ACL", "WHOAMI", "x"}, "-ERR wrong number of arguments for 'acl|whoami' command\r\n"},
		{[]string{"OBJECT"}, "-ERR wrong number of arguments for 'object' command\r\n"},
		{[]string{"SLOWLOG", "GET", "1", "2"}, "-ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.\r\n"},
		{[]string{"EVAL", "return redis.pcall('config','foo')", "0"}, "-ERR Unknown Redis command called from script\r\n"},
		{[]string{"EVAL", "return redis.pcall('config','get')", "0"}, "-ERR Wrong number of args calling Redis command from script\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SCRIPT", "foo"}, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n"},
		{[]string{"CLIENT", "INFO", "x"}, "-ERR wrong number of arguments for 'client|info' command\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"CONFIG", "GET"}, "-ERR wrong number of arguments for 'config|get' command\r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
	} {
		r.roundTrip(respArray(step.args...), step.want)
	}
	var got []string
	for _, l := range strings.Split(e.rdb.Info(t.Context(), "commandstats", "errorstats").Val(), "\r\n") {
		if strings.HasPrefix(l, "cmdstat_") || strings.HasPrefix(l, "errorstat_") {
			got = append(got, usecField.ReplaceAllString(l, ""))
		}
	}
	sort.Strings(got)
	want := []string{
		"cmdstat_acl|whoami:calls=0,rejected_calls=1,failed_calls=0",
		"cmdstat_client|info:calls=0,rejected_calls=1,failed_calls=0",
		"cmdstat_config|get:calls=0,rejected_calls=2,failed_calls=0",
		"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
		"cmdstat_eval:calls=2,rejected_calls=0,failed_calls=2",
		"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=1",
		"cmdstat_get:calls=0,rejected_calls=1,failed_calls=0",
		"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
		"cmdstat_object:calls=0,rejected_calls=1,failed_calls=0",
		"cmdstat_slowlog|get:calls=1,rejected_calls=0,failed_calls=1",
		"errorstat_ERR:count=10",
		"errorstat_EXECABORT:count=1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("INFO commandstats errorstats:\n%s\nwant (redis-server 7.0.15):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSubcommandClientList: CLIENT LIST names no command (cmd=NULL)
// after an unknown subcommand, and the subcommand after a wrong number of
// arguments for it, as Redis 7.0.15.
func TestSubcommandClientList(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip(respArray("CLIENT", "SETNAME", "probe"), "+OK\r\n")
	for _, tt := range []struct {
		args       []string
		reply, cmd string
	}{
		{[]string{"SCRIPT", "foo"}, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n", "NULL"},
		{[]string{"ACL", "WHOAMI", "x"}, "-ERR wrong number of arguments for 'acl|whoami' command\r\n", "acl|whoami"},
		{[]string{"OBJECT"}, "-ERR wrong number of arguments for 'object' command\r\n", "object"},
		{[]string{"SLOWLOG", "GET", "1", "2"}, "-ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.\r\n", "slowlog|get"},
	} {
		r.roundTrip(respArray(tt.args...), tt.reply)
		list := e.rdb.ClientList(t.Context()).Val()
		found := false
		for _, l := range strings.Split(list, "\n") {
			if strings.Contains(l, " name=probe ") {
				found = true
				if !strings.Contains(l, " cmd="+tt.cmd+" ") {
					t.Errorf("%q: CLIENT LIST %q, want cmd=%s", tt.args, l, tt.cmd)
				}
			}
		}
		if !found {
			t.Fatalf("CLIENT LIST %q: no client named probe", list)
		}
	}
}

// TestSubcommandGantry: the subcommands gantry adds to Redis 7.0's (CLIENT
// SETINFO, CLIENT NO-TOUCH, CLUSTER KEYRING) pass the check, with their
// arities checked as Redis 7.2 checks CLIENT SETINFO's.
func TestSubcommandGantry(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	r.roundTrip(respArray("CLIENT", "SETINFO", "lib-name", "x"), "+OK\r\n")
	r.roundTrip(respArray("CLIENT", "SETINFO", "lib-name"), "-ERR wrong number of arguments for 'client|setinfo' command\r\n")
	r.roundTrip(respArray("CLIENT", "NO-TOUCH", "on"), "+OK\r\n")
	r.roundTrip(respArray("CLUSTER", "KEYRING", "list"), "-ERR This instance has cluster support disabled\r\n")
	r.roundTrip(respArray("CLUSTER", "KEYRING"), "-ERR wrong number of arguments for 'cluster|keyring' command\r\n")
}
