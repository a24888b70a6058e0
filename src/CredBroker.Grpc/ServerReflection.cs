using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection.V1;

namespace CredBroker.Grpc;

/// <summary>
/// Server reflection (grpc.reflection.v1 and v1alpha, which share one wire format) so grpcurl,
/// Postman and evans can list and describe a listener's services without local .proto files.
/// </summary>
public static class ServerReflection
{
    public const string V1Service = "grpc.reflection.v1.ServerReflection";
    public const string V1AlphaService = "grpc.reflection.v1alpha.ServerReflection";
    private const string Method = "ServerReflectionInfo";

    /// <summary>
    /// Registers both reflection versions. <paramref name="files"/> are the descriptors of the
    /// registered services (their dependencies are found on their own); the service list is read
    /// from the registry at request time, so register reflection before or after the rest.
    /// </summary>
    public static GrpcMethodRegistry AddServerReflection(this GrpcMethodRegistry registry, params FileDescriptor[] files)
    {
        var index = new DescriptorIndex(files.Append(ReflectionReflection.Descriptor).Append(global::Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor));
        DuplexStreamingHandler<ServerReflectionRequest, ServerReflectionResponse> handler = async (requests, responses, context) =>
        {
            await foreach (var request in requests)
            {
                await responses.WriteAsync(Answer(request, registry, index), context.CancellationToken);
            }
        };
        return registry
            .AddDuplexStreaming(V1Service, Method, ServerReflectionRequest.Parser, handler)
            .AddDuplexStreaming(V1AlphaService, Method, ServerReflectionRequest.Parser, handler);
    }

    private static ServerReflectionResponse Answer(ServerReflectionRequest request, GrpcMethodRegistry registry, DescriptorIndex index)
    {
        var response = new ServerReflectionResponse { ValidHost = request.Host, OriginalRequest = request };
        switch (request.MessageRequestCase)
        {
            case ServerReflectionRequest.MessageRequestOneofCase.ListServices:
                var list = new ListServiceResponse();
                list.Service.AddRange(registry.Services.Select(s => new ServiceResponse { Name = s }));
                response.ListServicesResponse = list;
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileByFilename:
                SetFile(response, index.ByFileName(request.FileByFilename), $"File not found: {request.FileByFilename}");
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingSymbol:
                SetFile(response, index.BySymbol(request.FileContainingSymbol), $"Symbol not found: {request.FileContainingSymbol}");
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingExtension:
                // None of the served files declare extensions.
                SetError(response, StatusCode.NotFound, $"Extension not found: {request.FileContainingExtension.ContainingType}({request.FileContainingExtension.ExtensionNumber})");
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.AllExtensionNumbersOfType:
                if (index.BySymbol(request.AllExtensionNumbersOfType) is null)
                {
                    SetError(response, StatusCode.NotFound, $"Type not found: {request.AllExtensionNumbersOfType}");
                }
                else
                {
                    response.AllExtensionNumbersResponse = new ExtensionNumberResponse { BaseTypeName = request.AllExtensionNumbersOfType };
                }

                break;
            default:
                SetError(response, StatusCode.InvalidArgument, "The reflection request names no query.");
                break;
        }

        return response;
    }

    /// <summary>The file and every file it depends on, so the client can build the descriptors in one round trip.</summary>
    private static void SetFile(ServerReflectionResponse response, FileDescriptor? file, string notFound)
    {
        if (file is null)
        {
            SetError(response, StatusCode.NotFound, notFound);
            return;
        }

        var files = new FileDescriptorResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<FileDescriptor>([file]);
        while (pending.TryPop(out var next))
        {
            if (seen.Add(next.Name))
            {
                files.FileDescriptorProto.Add(next.SerializedData);
                foreach (var dependency in next.Dependencies)
                {
                    pending.Push(dependency);
                }
            }
        }

        response.FileDescriptorResponse = files;
    }

    private static void SetError(ServerReflectionResponse response, StatusCode code, string message) =>
        response.ErrorResponse = new ErrorResponse { ErrorCode = (int)code, ErrorMessage = message };

    /// <summary>File names and fully-qualified symbols (services, methods, messages, enums) → their file.</summary>
    private sealed class DescriptorIndex
    {
        private readonly Dictionary<string, FileDescriptor> _files = new(StringComparer.Ordinal);
        private readonly Dictionary<string, FileDescriptor> _symbols = new(StringComparer.Ordinal);

        public DescriptorIndex(IEnumerable<FileDescriptor> roots)
        {
            var pending = new Stack<FileDescriptor>(roots);
            while (pending.TryPop(out var file))
            {
                if (!_files.TryAdd(file.Name, file))
                {
                    continue;
                }

                foreach (var service in file.Services)
                {
                    _symbols[service.FullName] = file;
                    foreach (var method in service.Methods)
                    {
                        _symbols[method.FullName] = file;
                    }
                }

                AddMessages(file, file.MessageTypes);
                foreach (var e in file.EnumTypes)
                {
                    _symbols[e.FullName] = file;
                }

                foreach (var dependency in file.Dependencies)
                {
                    pending.Push(dependency);
                }
            }
        }

        public FileDescriptor? ByFileName(string name) => _files.GetValueOrDefault(name);

        public FileDescriptor? BySymbol(string symbol) => _symbols.GetValueOrDefault(symbol.TrimStart('.'));

        private void AddMessages(FileDescriptor file, IEnumerable<MessageDescriptor> messages)
        {
            foreach (var message in messages)
            {
                _symbols[message.FullName] = file;
                foreach (var e in message.EnumTypes)
                {
                    _symbols[e.FullName] = file;
                }

                AddMessages(file, message.NestedTypes);
            }
        }
    }
}
