//! The whole local stack: real service binaries behind the Lattice listeners, SigV4 and auth
//! policies, one trace across the three services, access logs and EMF metrics.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lattice_xray::testing::fresh_root;
use local_stack::lattice::access_log::AccessLogEntry;
use local_stack::stack::{function_role, StackState, LOADGEN_ROLE};
use serde_json::{json, Value};
use support::{access_log, order, request, send, send_segment, start, wait_for_segments};

const ACCESS_LOG_KEYS: [&str; 35] = [
    "serviceNetworkArn",
    "resolvedUser",
    "listenerType",
    "authDeniedReason",
    "targetGroupArn",
    "sourceVpcArn",
    "destinationVpcId",
    "sourceIpPort",
    "listenerId",
    "targetIpPort",
    "failureReason",
    "serviceArn",
    "sourceVpcId",
    "startTime",
    "requestMethod",
    "requestPath",
    "protocol",
    "responseCode",
    "bytesReceived",
    "bytesSent",
    "duration",
    "userAgent",
    "hostHeader",
    "serverNameIndication",
    "requestToTargetDuration",
    "responseFromTargetDuration",
    "sslCipher",
    "tlsVersion",
    "callerPrincipal",
    "callerPrincipalOrgID",
    "callerX509IssuerOU",
    "callerX509SubjectCN",
    "callerX509SANNameCN",
    "callerX509SANDNS",
    "callerX509SANURI",
];

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_order_crosses_all_three_services_as_one_linked_trace() {
    let stack = start("one-trace", &[], |_| {}).await;
    let loadgen = stack.loadgen_key().unwrap().clone();
    let root = fresh_root().to_string();
    let (client_id, call_id) = ("1000000000000001", "1000000000000002");
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let started = epoch();
    let (status, body) = send(request(
        &url,
        &order("ord-trace-1"),
        Some(&loadgen),
        SystemTime::now(),
        Some(&format!(
            "Root={root};Parent={call_id};Sampled=1;Lineage=a87bd80c:1"
        )),
    ))
    .await;
    assert_eq!(status, 201, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["order_id"], "ord-trace-1");
    // The caller's own segment, as loadgen sends it.
    send_segment(
        stack.xray_daemon(),
        &json!({"name": "test-client", "id": client_id, "trace_id": root,
            "start_time": started, "end_time": epoch(),
            "subsegments": [{"id": call_id, "name": "order", "namespace": "remote",
                "start_time": started, "end_time": epoch(),
                "http": {"request": {"method": "POST", "url": url}, "response": {"status": 201}}}]}),
    );
    let entities = wait_for_segments(
        &stack,
        &root,
        &["test-client", "order", "payment", "inventory"],
    )
    .await;
    let by_id = |id: &str| entities.iter().find(|e| e.id == id);
    let segment = |name: &str| {
        entities
            .iter()
            .find(|e| e.is_segment && e.fields["name"] == name)
            .unwrap()
    };
    // order hangs under the caller's subsegment.
    assert_eq!(segment("order").parent_id.as_deref(), Some(call_id));
    assert_eq!(segment("order").fields["origin"], "AWS::Lambda::Function");
    // payment and inventory each hang under one of order's remote subsegments.
    for downstream in ["payment", "inventory"] {
        let parent = segment(downstream).parent_id.clone().expect("linked");
        let call = by_id(&parent).expect("the parent subsegment is in the trace");
        assert_eq!(call.fields["namespace"], "remote", "{downstream}");
        assert_eq!(call.fields["name"], downstream);
        // ...and that subsegment belongs to order's segment.
        let mut up = call.parent_id.clone();
        while let Some(id) = up.clone() {
            if id == segment("order").id {
                break;
            }
            up = by_id(&id).and_then(|e| e.parent_id.clone());
        }
        assert_eq!(
            up.as_deref(),
            Some(segment("order").id.as_str()),
            "{downstream}"
        );
    }
    // Every parent link resolves inside the trace, except the caller's root.
    for entity in &entities {
        if let Some(parent) = &entity.parent_id {
            assert!(
                by_id(parent).is_some(),
                "dangling parent {parent} of {}",
                entity.id
            );
        } else {
            assert_eq!(entity.fields["name"], "test-client");
        }
    }
    // The Lambda facade traced each invocation in its own trace, as Lambda does behind Lattice.
    // Its documents are sent as each invocation ends, after the function's own.
    let facade_traces = || {
        stack
            .store
            .trace_ids()
            .into_iter()
            .filter(|t| *t != root)
            .count()
    };
    for _ in 0..100 {
        if facade_traces() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(facade_traces() >= 3, "{}", facade_traces());

    // One access-log line per hop, every one with the 35 keys.
    let lines = access_log(&stack);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let raw = std::fs::read_to_string(&stack.state.access_log).unwrap();
    for text in raw.lines() {
        // Lattice's 35 keys, in Lattice's order: the record round-trips byte for byte.
        let entry: AccessLogEntry = serde_json::from_str(text).unwrap();
        assert_eq!(entry.to_json_line(), text);
        let positions: Vec<usize> = ACCESS_LOG_KEYS
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
    for line in &lines {
        assert_eq!(line.as_object().unwrap().len(), 35);
        assert!(line["responseCode"].as_u64().unwrap() < 300, "{line}");
    }
    let order_line = lines
        .iter()
        .find(|l| l["requestPath"] == "/orders")
        .unwrap();
    assert_eq!(order_line["responseCode"], 201);
    assert_eq!(order_line["callerPrincipal"], stack.state.loadgen_principal);
    assert_eq!(order_line["resolvedUser"], stack.state.loadgen_principal);
    assert_eq!(order_line["authDeniedReason"], "-");
    assert_eq!(order_line["failureReason"], "-");
    assert_eq!(
        order_line["serviceArn"],
        stack.state.services["order"].service_arn
    );
    assert_eq!(
        order_line["targetGroupArn"],
        stack.state.services["order"].target_group_arn
    );
    assert_eq!(order_line["requestMethod"], "POST");
    assert_eq!(order_line["protocol"], "HTTP/1.1");
    let order_role = stack.topology.role_arn(&function_role("order"));
    for path in ["/reservations", "/payments"] {
        let line = lines.iter().find(|l| l["requestPath"] == path).unwrap();
        assert_eq!(line["callerPrincipal"], order_role, "{path}");
    }

    // The state file tells other processes where everything is.
    let state = StackState::load(&stack.config.state_dir).unwrap();
    assert_eq!(state, stack.state);
    assert_eq!(
        state.loadgen_principal,
        stack.topology.role_arn(LOADGEN_ROLE)
    );

    // Metrics: one EMF line per Service and per TargetGroup for this minute, after shutdown.
    let metrics_path = stack.state.metrics_log.clone();
    let state_dir = stack.config.state_dir.clone();
    let pids: Vec<u32> = stack
        .functions
        .values()
        .flat_map(|f| f.process_ids())
        .collect();
    assert_eq!(pids.len(), 3, "one environment per function");
    stack.shutdown().await;
    // No orphan: every environment's process is gone (not even a zombie).
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived the stack"
        );
    }
    let emf: Vec<Value> = std::fs::read_to_string(&metrics_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let services: Vec<&Value> = emf.iter().filter(|l| l.get("Service").is_some()).collect();
    let targets: Vec<&Value> = emf
        .iter()
        .filter(|l| l.get("TargetGroup").is_some())
        .collect();
    assert_eq!(services.len(), 3, "{emf:#?}");
    assert_eq!(targets.len(), 3);
    let total: u64 = services
        .iter()
        .map(|l| l["TotalRequestCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    let ok: u64 = services
        .iter()
        .map(|l| l["HTTPCode_2XX_Count"].as_u64().unwrap())
        .sum();
    assert_eq!(ok, 3);
    assert!(
        !StackState::path(&state_dir).exists(),
        "state file removed on shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_badly_signed_expired_and_wrong_principal_requests_are_refused() {
    let stack = start("auth", &[], |_| {}).await;
    let loadgen = stack.loadgen_key().unwrap().clone();
    let payment_role = stack
        .key_of(&stack.topology.role_arn(&function_role("payment")))
        .unwrap()
        .clone();
    let order_url = format!("{}/orders", stack.service_url("order").unwrap());
    let payment_url = format!("{}/payments", stack.service_url("payment").unwrap());
    let order_arn = stack.state.services["order"].service_arn.clone();
    let payment_arn = stack.state.services["payment"].service_arn.clone();
    let body = order("ord-auth");
    let now = SystemTime::now();

    let (status, text) = send(request(&order_url, &body, None, now, None)).await;
    assert_eq!(status, 403);
    assert_eq!(
        text,
        format!("AccessDeniedException: User: anonymous is not authorized to perform: vpc-lattice-svcs:Invoke on resource: {order_arn}/orders because no network-based policy allows the vpc-lattice-svcs:Invoke action")
    );

    let mut forged = loadgen.clone();
    forged.secret_access_key = "wrong-secret-wrong-secret-wrong-secret-00".into();
    let (status, text) = send(request(&order_url, &body, Some(&forged), now, None)).await;
    assert_eq!(status, 403);
    assert_eq!(text, "InvalidSignatureException: The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.");

    let (status, text) = send(request(
        &order_url,
        &body,
        Some(&loadgen),
        now - Duration::from_secs(600),
        None,
    ))
    .await;
    assert_eq!(status, 403);
    assert!(
        text.starts_with("InvalidSignatureException: Signature expired: "),
        "{text}"
    );

    let mut unknown = loadgen.clone();
    unknown.access_key_id = "AKIAUNKNOWNUNKNOWN00".into();
    let (status, text) = send(request(&order_url, &body, Some(&unknown), now, None)).await;
    assert_eq!(
        (status, text.as_str()),
        (
            403,
            "UnrecognizedClientException: The security token included in the request is invalid"
        )
    );

    // payment's role may not call order (service policy), loadgen may not call payment.
    let (status, text) = send(request(&order_url, &body, Some(&payment_role), now, None)).await;
    assert_eq!(status, 403);
    assert_eq!(
        text,
        format!("AccessDeniedException: User: {} is not authorized to perform: vpc-lattice-svcs:Invoke on resource: {order_arn}/orders because no service-based policy allows the vpc-lattice-svcs:Invoke action", payment_role.principal)
    );
    let charge = json!({"order_id": "ord-auth", "amount": 1.0, "currency": "USD"});
    let (status, text) = send(request(&payment_url, &charge, Some(&loadgen), now, None)).await;
    assert_eq!(status, 403);
    assert!(
        text.contains(&format!(
            "on resource: {payment_arn}/payments because no service-based policy"
        )),
        "{text}"
    );

    // Nothing reached a function; every refusal was logged with its reason.
    let lines = access_log(&stack);
    assert_eq!(lines.len(), 6);
    for line in &lines {
        assert_eq!(line["responseCode"], 403);
        assert_eq!(line["targetGroupArn"], "-");
        assert_eq!(line.as_object().unwrap().len(), 35);
    }
    assert_eq!(
        lines[0]["authDeniedReason"],
        "NoAllowInServiceNetworkPolicy"
    );
    assert_eq!(lines[0]["failureReason"], "AuthDenied");
    assert_eq!(lines[0]["resolvedUser"], "Anonymous");
    assert_eq!(lines[1]["failureReason"], "AuthenticationFailed");
    assert_eq!(lines[4]["authDeniedReason"], "NoAllowInServicePolicy");
    assert_eq!(lines[4]["callerPrincipal"], payment_role.principal);
    assert!(stack
        .functions
        .values()
        .all(|f| f.stats().environments_started == 0));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_timeouts_and_killed_environments_map_to_gateway_errors() {
    let stack = start("faults", &[("PAYMENT_LATENCY_MS", "1500")], |config| {
        config.downstream_timeout = Duration::from_millis(1000);
    })
    .await;
    let order_role = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let payment_url = format!("{}/payments", stack.service_url("payment").unwrap());
    let charge = |id: &str| json!({"order_id": id, "amount": 1.0, "currency": "USD"});

    // The function runs past its timeout: 504, the environment is recycled.
    let (status, text) = send(request(
        &payment_url,
        &charge("t-1"),
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(
        (status, text.as_str()),
        (504, "Task timed out after 1.00 seconds")
    );

    // An environment killed mid-invocation: 502, then a new environment serves the next one.
    let payment = stack.functions["payment"].clone();
    let request_task = tokio::spawn(send(request(
        &payment_url,
        &charge("k-1"),
        Some(&order_role),
        SystemTime::now(),
        None,
    )));
    let mut killed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(pid) = payment.process_ids().first() {
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            killed = true;
            break;
        }
    }
    assert!(killed);
    let (status, text) = request_task.await.unwrap();
    assert_eq!(status, 502, "{text}");
    let lines = access_log(&stack);
    assert_eq!(lines[0]["failureReason"], "LambdaTimeout");
    assert_eq!(lines[1]["failureReason"], "LambdaFunctionError");
    assert_eq!(
        lines[1]["targetGroupArn"],
        stack.state.services["payment"].target_group_arn
    );
    stack.shutdown().await;

    // A stack with no latency, to prove the service recovers after a kill.
    let stack = start("recover", &[], |_| {}).await;
    let order_role = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let payment_url = format!("{}/payments", stack.service_url("payment").unwrap());
    let (status, _) = send(request(
        &payment_url,
        &charge("r-1"),
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(status, 200);
    let payment = stack.functions["payment"].clone();
    for pid in payment.process_ids() {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, text) = send(request(
        &payment_url,
        &charge("r-2"),
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        payment.stats().environments_started,
        2,
        "the dead environment was replaced"
    );
    stack.shutdown().await;
}
