package kv

import (
	"testing"
)

func TestLists(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"LPUSH l c b a", "3"},
		{"RPUSH l d e", "5"},
		{"LRANGE l 0 -1", "[a b c d e]"},
		{"LRANGE l -2 -1", "[d e]"},
		{"LRANGE l 3 1", "[]"},
		{"LRANGE l 10 20", "[]"},
		{"LRANGE l -100 100", "[a b c d e]"},
		{"LRANGE nokey 0 -1", "[]"},
		{"LLEN l", "5"},
		{"LLEN nokey", "0"},
		{"LINDEX l 0", "a"},
		{"LINDEX l -1", "e"},
		{"LINDEX l 5", "nil"},
		{"LINDEX l x", "ERR:ERR value is not an integer or out of range"},
		{"LSET l 1 B", "OK"},
		{"LSET l -1 E", "OK"},
		{"LSET l 9 x", "ERR:ERR index out of range"},
		{"LSET nokey 0 x", "ERR:ERR no such key"},
		{"LRANGE l 0 -1", "[a B c d E]"},
		{"LPUSHX nokey a", "0"},
		{"RPUSHX nokey a", "0"},
		{"EXISTS nokey", "0"},
		{"LPUSHX l z", "6"},
		{"LPOP l", "z"},
		{"RPOP l", "E"},
		{"LPOP l 2", "[a B]"},
		{"LPOP l 0", "[]"},
		{"RPOP l 10", "[d c]"},
		{"EXISTS l", "0"},
		{"LPOP l", "nil"},
		{"LPOP l 2", "nil"},
		{"LPOP l -1", "ERR:ERR value is out of range, must be positive"},
		{"RPUSH r a b a c a", "5"},
		{"LREM r 2 a", "2"},
		{"LRANGE r 0 -1", "[b c a]"},
		{"RPUSH r a", "4"},
		{"LREM r -1 a", "1"},
		{"LRANGE r 0 -1", "[b c a]"},
		{"LREM r 0 a", "1"},
		{"LREM r 0 zz", "0"},
		{"LTRIM r 0 0", "OK"},
		{"LRANGE r 0 -1", "[b]"},
		{"LTRIM r 5 10", "OK"},
		{"EXISTS r", "0"},
		{"RPUSH i a b c", "3"},
		{"LINSERT i BEFORE b x", "4"},
		{"LINSERT i AFTER c y", "5"},
		{"LINSERT i AFTER nope y", "-1"},
		{"LINSERT nokey AFTER a y", "0"},
		{"LINSERT i MIDDLE a y", "ERR:ERR syntax error"},
		{"LRANGE i 0 -1", "[a x b c y]"},
		{"RPUSH p a b c 1 2 3 c c", "8"},
		{"LPOS p c", "2"},
		{"LPOS p c RANK 2", "6"},
		{"LPOS p c RANK -1", "7"},
		{"LPOS p c COUNT 0", "[2 6 7]"},
		{"LPOS p c COUNT 2 RANK -1", "[7 6]"},
		{"LPOS p c MAXLEN 1", "nil"},
		{"LPOS p zz", "nil"},
		{"LPOS p zz COUNT 1", "[]"},
		{"LPOS p c RANK 0", "ERR:ERR RANK can't be zero"},
		{"LPOS p c COUNT -1", "ERR:ERR COUNT can't be negative"},
		{"LPOS p c MAXLEN -1", "ERR:ERR MAXLEN can't be negative"},
		{"RPUSH src 1 2 3", "3"},
		{"LMOVE src dst LEFT RIGHT", "1"},
		{"LMOVE src dst RIGHT LEFT", "3"},
		{"LRANGE dst 0 -1", "[3 1]"},
		{"RPOPLPUSH src dst", "2"},
		{"EXISTS src", "0"},
		{"LRANGE dst 0 -1", "[2 3 1]"},
		{"LMOVE dst dst LEFT RIGHT", "2"},
		{"LRANGE dst 0 -1", "[3 1 2]"},
		{"LMOVE nokey dst LEFT RIGHT", "nil"},
		{"LMOVE dst x UP DOWN", "ERR:ERR syntax error"},
		{"SET str v", "OK"},
		{"LMOVE dst str LEFT RIGHT", "ERR:WRONGTYPE"},
		{"LRANGE dst 0 -1", "[3 1 2]"},
		{"LPUSH str x", "ERR:WRONGTYPE"},
		{"LMPOP 2 nokey dst LEFT", "[dst [3]]"},
		{"LMPOP 2 nokey dst RIGHT COUNT 5", "[dst [2 1]]"},
		{"LMPOP 1 dst LEFT", "nil"},
		{"LMPOP 0 dst LEFT", "ERR:ERR numkeys should be greater than 0"},
		{"LMPOP a dst LEFT", "ERR:ERR numkeys should be greater than 0"},
		{"BLMPOP 0 a dst LEFT", "ERR:ERR numkeys should be greater than 0"},
		{"LMPOP 1 dst LEFT COUNT 0", "ERR:ERR count should be greater than 0"},
		{"LMPOP 1 dst MIDDLE", "ERR:ERR syntax error"},
		{"LMPOP 5 a b", "ERR:ERR syntax error"},
	})
}

func TestListLarge(t *testing.T) {
	e := startServer(t, nil)
	var steps []step
	for i := 0; i < 300; i++ {
		steps = append(steps, step{"RPUSH big " + itoa(int64(i)), itoa(int64(i + 1))})
	}
	for i := 0; i < 100; i++ {
		steps = append(steps, step{"LPOP big", itoa(int64(i))})
	}
	steps = append(steps,
		step{"LINDEX big 0", "100"},
		step{"LINDEX big -1", "299"},
		step{"LLEN big", "200"},
		step{"LPUSH big x", "201"},
		step{"LINDEX big 1", "100"},
		step{"LINSERT big BEFORE 150 y", "202"},
		step{"LINDEX big 51", "y"},
		step{"LRANGE big 50 52", "[149 y 150]"},
		step{"OBJECT ENCODING big", "listpack"},
	)
	e.run(steps)
}
