print("chatledger")
