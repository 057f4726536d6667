package kv

import (
	"testing"
)

func TestSets(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"SADD s a b c", "3"},
		{"SADD s a d", "1"},
		{"SCARD s", "4"},
		{"SCARD nokey", "0"},
		{"SMEMBERS s", "sorted:[a b c d]"},
		{"SMEMBERS nokey", "[]"},
		{"SISMEMBER s a", "1"},
		{"SISMEMBER s z", "0"},
		{"SISMEMBER nokey a", "0"},
		{"SMISMEMBER s a z d", "[1 0 1]"},
		{"SREM s a z", "1"},
		{"SREM nokey a", "0"},
		{"SRANDMEMBER s", "*"},
		{"SRANDMEMBER nokey", "nil"},
		{"SRANDMEMBER nokey 5", "[]"},
		{"SRANDMEMBER s 10", "sorted:[b c d]"},
		{"SRANDMEMBER s 0", "[]"},
		{"SPOP s 0", "[]"},
		{"SPOP s 10", "sorted:[b c d]"},
		{"EXISTS s", "0"},
		{"SPOP s", "nil"},
		{"SPOP s -1", "ERR:ERR value is out of range, must be positive"},
		{"SADD one x", "1"},
		{"SPOP one", "x"},
		{"EXISTS one", "0"},
		{"SADD a 1 2 3 4", "4"},
		{"SADD b 3 4 5", "3"},
		{"SADD c 4 6", "2"},
		{"SINTER a b", "sorted:[3 4]"},
		{"SINTER a b c", "[4]"},
		{"SINTER a nokey", "[]"},
		{"SUNION a b", "sorted:[1 2 3 4 5]"},
		{"SUNION nokey", "[]"},
		{"SDIFF a b", "sorted:[1 2]"},
		{"SDIFF a b c", "sorted:[1 2]"},
		{"SDIFF nokey a", "[]"},
		{"SINTERSTORE d a b", "2"},
		{"SMEMBERS d", "sorted:[3 4]"},
		{"SUNIONSTORE d a c", "5"},
		{"SDIFFSTORE d a a", "0"},
		{"EXISTS d", "0"},
		{"SINTERCARD 2 a b", "2"},
		{"SINTERCARD 2 a b LIMIT 1", "1"},
		{"SINTERCARD 0 a", "ERR:ERR numkeys should be greater than 0"},
		{"SINTERCARD a a", "ERR:ERR numkeys should be greater than 0"}, // as Redis: not the integer error
		{"SINTERCARD 3 a b", "ERR:ERR Number of keys can't be greater than number of args"},
		{"SINTERCARD 1 a LIMIT -1", "ERR:ERR LIMIT can't be negative"},
		{"SINTERCARD 1 a LIMIT a", "ERR:ERR LIMIT can't be negative"}, // as Redis
		{"SMOVE a b 1", "1"},
		{"SMOVE a b 1", "0"},
		{"SISMEMBER b 1", "1"},
		{"SMOVE c newset 6", "1"},
		{"SMOVE c newset 4", "1"},
		{"EXISTS c", "0"},
		{"SMEMBERS newset", "sorted:[4 6]"},
		{"SET str v", "OK"},
		{"SADD str a", "ERR:WRONGTYPE"},
		{"SINTER a str", "ERR:WRONGTYPE"},
		{"SMOVE a str 2", "ERR:WRONGTYPE"},
		{"SMOVE str a 2", "ERR:WRONGTYPE"},
		{"SINTERSTORE str a", "3"},
		{"TYPE str", "set"},
	})
}

func TestHashes(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"HSET h a 1 b 2", "2"},
		{"HSET h a 10 c 3", "1"},
		{"HSET h a", "ERR:ERR wrong number of arguments for 'hset' command"},
		{"HMSET h d 4", "OK"},
		{"HGET h a", "10"},
		{"HGET h z", "nil"},
		{"HGET nokey a", "nil"},
		{"HMGET h a z d", "[10 nil 4]"},
		{"HLEN h", "4"},
		{"HLEN nokey", "0"},
		{"HEXISTS h a", "1"},
		{"HEXISTS h z", "0"},
		{"HSTRLEN h a", "2"},
		{"HSTRLEN h z", "0"},
		{"HKEYS h", "sorted:[a b c d]"},
		{"HVALS h", "sorted:[10 2 3 4]"},
		{"HGETALL nokey", "[]"},
		{"HSETNX h a x", "0"},
		{"HSETNX h e 5", "1"},
		{"HSETNX nh a 1", "1"},
		{"HDEL h a z", "1"},
		{"HDEL nh a", "1"},
		{"EXISTS nh", "0"},
		{"HINCRBY h b 5", "7"},
		{"HINCRBY h new -3", "-3"},
		{"HINCRBY h b x", "ERR:ERR value is not an integer or out of range"},
		{"HSET h s hello", "1"},
		{"HINCRBY h s 1", "ERR:ERR hash value is not an integer"},
		{"HSET h max 9223372036854775807", "1"},
		{"HINCRBY h max 1", "ERR:ERR increment or decrement would overflow"},
		{"HINCRBYFLOAT h f 1.5", "1.5"},
		{"HINCRBYFLOAT h f 2.25", "3.75"},
		{"HINCRBYFLOAT h s 1", "ERR:ERR hash value is not a float"},
		{"HINCRBYFLOAT h f +inf", "ERR:ERR value is NaN or Infinity"},
		{"HINCRBYFLOAT h f x", "ERR:ERR value is not a valid float"},
		{"HRANDFIELD nokey", "nil"},
		{"HRANDFIELD nokey 3", "[]"},
		{"HSET small x 1", "1"},
		{"HRANDFIELD small", "x"},
		{"HRANDFIELD small 5 WITHVALUES", "[x 1]"},
		{"HRANDFIELD small -3", "[x x x]"},
		{"HRANDFIELD small 1 FOO", "ERR:ERR syntax error"},
		{"SET str v", "OK"},
		{"HGET str a", "ERR:WRONGTYPE"},
		{"HSET str a b", "ERR:WRONGTYPE"},
	})
	res, err := e.rdb.HGetAll(t.Context(), "small").Result()
	if err != nil || len(res) != 1 || res["x"] != "1" {
		t.Fatalf("HGETALL = %v, %v", res, err)
	}
}

// TestSMoveWatch: SMOVE of a member the destination already has changes
// only the source, so a WATCH on the destination holds (as Redis) and one
// on the source fails.
func TestSMoveWatch(t *testing.T) {
	tests := []struct {
		watched string
		member  string
		execs   bool // EXEC runs the transaction
	}{
		{"dst", "a", true},  // dst has a: unchanged
		{"dst", "b", false}, // dst gains b
		{"src", "a", false}, // src loses a
		{"dst", "zz", true}, // nothing moves
	}
	for _, tt := range tests {
		t.Run(tt.watched+" "+tt.member, func(t *testing.T) {
			e := startServer(t, nil)
			e.run([]step{{"SADD src a b", "2"}, {"SADD dst a", "1"}})
			r := e.raw()
			r.roundTrip("WATCH "+tt.watched+"\r\n", "+OK\r\n")
			r.roundTrip("MULTI\r\n", "+OK\r\n")
			r.roundTrip("SADD other c\r\n", "+QUEUED\r\n")
			e.run([]step{{"SMOVE src dst " + tt.member, "*"}})
			want := "*-1\r\n"
			if tt.execs {
				want = "*1\r\n:1\r\n"
			}
			r.roundTrip("EXEC\r\n", want)
		})
	}
}
